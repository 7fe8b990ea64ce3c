/* jmap_types_fuzz.c - libFuzzer target: JMAP dates and keywords.
 *
 * Input: any bytes, cut at the first NUL.  A date that parses must be
 * made of the RFC 3339 characters and give the same time when written
 * back in UTC; a keyword that is accepted must be printable ASCII without
 * the excluded characters. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/jmap/jmap_types.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	for (int utc = 0; utc < 2; utc++) {
		int64_t t;
		if (!jmap_date_parse(s, utc, &t))
			continue;
		assert(strspn(s, "0123456789-T:.Z+") == strlen(s));
		time_t tt = (time_t)t;
		struct tm tm;
		assert(gmtime_r(&tt, &tm) != NULL);
		char back[64];
		snprintf(back, sizeof back, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		int64_t t2;
		if (tm.tm_year + 1900 >= 0 && tm.tm_year + 1900 <= 9999)
			assert(jmap_date_parse(back, true, &t2) && t2 == t);
	}
	if (jmap_keyword_ok(s)) {
		for (const char *p = s; *p; p++)
			assert(*p > ' ' && *p < 127 && strchr("()[]{}%*\"\\", *p) == NULL);
		(void)jmap_keyword_flag(s);
	}
	free(s);
	return 0;
}
