/* jmap_types.c - JMAP dates and keywords (see jmap_types.h). */
#include "proto/jmap/jmap_types.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store/store.h"

static bool digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

bool jmap_date_parse(const char *s, bool utc, int64_t *t_r)
{
	if (s == NULL || strnlen(s, 20) < 20 || !digits(s, 4) || s[4] != '-' ||
	    !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) || s[10] != 'T' ||
	    !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' ||
	    !digits(s + 17, 2))
		return false;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	int off = 0;
	if (strcmp(p, "Z") == 0) {
		off = 0;
	} else if (!utc && (p[0] == '+' || p[0] == '-') && digits(p + 1, 2) && p[3] == ':' &&
		   digits(p + 4, 2) && p[6] == '\0' && num(p + 1, 2) < 24 && num(p + 4, 2) < 60) {
		off = (num(p + 1, 2) * 60 + num(p + 4, 2)) * 60 * (p[0] == '-' ? -1 : 1);
	} else {
		return false;
	}
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y = num(s, 4), mo = num(s + 5, 2), d = num(s + 8, 2);
	if (mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && leap(y) ? 1 : 0) || num(s + 11, 2) > 23 ||
	    num(s + 14, 2) > 59 || num(s + 17, 2) > 60)
		return false;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			.tm_hour = num(s + 11, 2), .tm_min = num(s + 14, 2),
			.tm_sec = num(s + 17, 2)};
	*t_r = (int64_t)timegm(&tm) - off;
	return true;
}

bool jmap_keyword_ok(const char *kw)
{
	size_t n = strnlen(kw, STORE_KEYWORD_LEN_MAX + 1);
	if (n == 0 || n > STORE_KEYWORD_LEN_MAX)
		return false;
	for (const char *p = kw; *p; p++)
		if (*p <= ' ' || *p >= 127 || strchr("()[]{}%*\"\\", *p))
			return false;
	return true;
}

static const struct {
	uint32_t flag;
	const char *kw;
} flag_kw[] = {
	{FLAG_SEEN, "$seen"}, {FLAG_FLAGGED, "$flagged"}, {FLAG_ANSWERED, "$answered"},
	{FLAG_DRAFT, "$draft"},
};

uint32_t jmap_keyword_flag(const char *kw)
{
	for (size_t i = 0; i < sizeof flag_kw / sizeof flag_kw[0]; i++)
		if (strcasecmp(kw, flag_kw[i].kw) == 0)
			return flag_kw[i].flag;
	return 0;
}

const char *jmap_flag_keyword(uint32_t flag)
{
	for (size_t i = 0; i < sizeof flag_kw / sizeof flag_kw[0]; i++)
		if (flag == flag_kw[i].flag)
			return flag_kw[i].kw;
	return NULL;
}
