/* mbox.c - what the mbox backends share (mbox.h): freeing listings and
 * folder lists, the flag letters ls prints, and the Date parser. */
#include "client/mbox.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define DAY 86400

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void skip_blanks(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

/* 1..maxd digits (at least mind) at *p; -1 when there are none. */
static int digits(const char **p, int mind, int maxd, int *count_r)
{
	int v = 0, k = 0;
	while (k < maxd && **p >= '0' && **p <= '9') {
		v = v * 10 + (**p - '0');
		(*p)++;
		k++;
	}
	if (count_r != NULL)
		*count_r = k;
	return k >= mind ? v : -1;
}

bool mbox_parse_date(const char *s, int64_t *t_r, int *off_r)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	static const struct {
		const char *name;
		int hours;
	} zones[] = {{"UT", 0}, {"UTC", 0}, {"GMT", 0}, {"Z", 0}, {"EST", -5}, {"EDT", -4},
		     {"CST", -6}, {"CDT", -5}, {"MST", -7}, {"MDT", -6}, {"PST", -8}, {"PDT", -7}};
	const char *p = s;
	skip_blanks(&p);
	if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
		while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
			p++;
		skip_blanks(&p);
		if (*p == ',')
			p++;
		skip_blanks(&p);
	}
	int day = digits(&p, 1, 2, NULL);
	skip_blanks(&p);
	if (*p == '-')          /* INTERNALDATE's dd-Mon-yyyy */
		p++;
	int mon = -1;
	for (int i = 0; i < 12 && p[0] && p[1] && p[2]; i++)
		if (lower((unsigned char)p[0]) == months[3 * i] &&
		    lower((unsigned char)p[1]) == months[3 * i + 1] &&
		    lower((unsigned char)p[2]) == months[3 * i + 2])
			mon = i + 1;
	if (mon < 0)
		return false;
	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
		p++;
	skip_blanks(&p);
	if (*p == '-')
		p++;
	int yd;
	int year = digits(&p, 2, 4, &yd);
	if (year < 0)
		return false;
	if (yd == 2)
		year += year < 50 ? 2000 : 1900;
	else if (yd == 3)
		year += 1900;
	skip_blanks(&p);
	int hh = digits(&p, 1, 2, NULL), mm = -1, ss = 0;
	if (*p == ':') {
		p++;
		mm = digits(&p, 2, 2, NULL);
	}
	if (*p == ':') {
		p++;
		ss = digits(&p, 2, 2, NULL);
	}
	if (day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60)
		return false;
	skip_blanks(&p);
	int off = 0;
	if ((*p == '+' || *p == '-') && p[1] >= '0' && p[1] <= '9') {
		const char *q = p + 1;
		int z = digits(&q, 4, 4, NULL);
		if (z >= 0 && z % 100 < 60 && z / 100 < 24)
			off = ((z / 100) * 3600 + (z % 100) * 60) * (*p == '-' ? -1 : 1);
	} else {
		for (size_t i = 0; i < ARRAY_LEN(zones); i++) {
			size_t l = strlen(zones[i].name);
			if (str_nieq(p, zones[i].name, l) &&
			    !((p[l] >= 'A' && p[l] <= 'Z') || (p[l] >= 'a' && p[l] <= 'z')))
				off = zones[i].hours * 3600;
		}
	}
	int64_t t = days_from_civil(year, (unsigned)mon, (unsigned)day) * DAY + hh * 3600 +
		    mm * 60 + ss;
	*t_r = t - off;
	*off_r = off;
	return true;
}


void mbox_msgs_free(struct mbox_msg *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i].from);
		free(v[i].to);
		free(v[i].subject);
		free(v[i].message_id);
	}
	free(v);
}

void mbox_folders_free(struct mbox_folder *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

void mbox_flags_letters(unsigned flags, char out[8])
{
	static const struct {
		unsigned flag;
		char letter;
	} letters[] = {
		{MBOX_RECENT, 'N'}, {MBOX_SEEN, 'S'},  {MBOX_ANSWERED, 'R'},
		{MBOX_FLAGGED, 'F'}, {MBOX_DELETED, 'T'}, {MBOX_DRAFT, 'D'},
	};
	size_t k = 0;
	for (size_t i = 0; i < sizeof letters / sizeof letters[0]; i++)
		if (flags & letters[i].flag)
			out[k++] = letters[i].letter;
	out[k] = '\0';
}
