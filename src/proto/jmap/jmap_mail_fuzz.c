/* jmap_mail_fuzz.c - libFuzzer target: any bytes as a stored message,
 * turned into a JMAP Email object with every property (jmap_email_from_data:
 * MIME structure, textBody/htmlBody/attachments, header forms, body values,
 * preview).  The result must be an object that serialises (every string
 * valid UTF-8) and parses back. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "proto/jmap/jmap_mail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 256 * 1024)
		return 0;
	json_t *o = jmap_email_from_data((const char *)data, size);
	assert(json_is_object(o));
	char *text = json_dumps(o, JSON_COMPACT);
	assert(text != NULL);
	json_t *back = json_loads(text, 0, NULL);
	assert(back != NULL);
	json_decref(back);
	free(text);
	json_decref(o);
	return 0;
}
