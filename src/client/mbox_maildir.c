/* mbox_maildir.c - the mbox operations over a local Maildir (mbox.h). */
#include "client/mbox.h"
