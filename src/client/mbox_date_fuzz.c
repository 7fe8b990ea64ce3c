/* mbox_date_fuzz.c - libFuzzer target for mbox_parse_date (Date fields of
 * mail and IMAP INTERNALDATE): any text parses or not without a fault; a
 * parsed date has a zone within a day. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/mbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	int64_t t;
	int off;
	if (mbox_parse_date(s, &t, &off) && (off <= -86400 || off >= 86400))
		abort();
	free(s);
	return 0;
}
