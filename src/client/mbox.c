/* mbox.c - what the mbox backends share (mbox.h): freeing listings and
 * folder lists, and the flag letters ls prints. */
#include "client/mbox.h"

#include <stdlib.h>

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
