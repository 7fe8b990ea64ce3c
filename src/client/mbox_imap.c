/* mbox_imap.c - the mbox operations over IMAP (placeholder until the IMAP
 * client lands). */
#include <stdio.h>

#include "client/account.h"
#include "client/mbox.h"

struct mbox *mbox_imap_open(const struct account *a, FILE *trace, bool *temp_r, char *err,
			    size_t errsz)
{
	(void)a;
	(void)trace;
	if (temp_r)
		*temp_r = false;
	snprintf(err, errsz, "IMAP is not implemented yet");
	return NULL;
}
