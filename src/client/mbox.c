/* mbox.c - what the mbox backends share (mbox.h). */
#include "client/mbox.h"
