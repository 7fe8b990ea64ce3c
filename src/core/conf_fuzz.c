/* conf_fuzz.c - the config parser on arbitrary text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xstrndup((const char *)data, size);
	struct conf c;
	conf_defaults(&c);
	char *err = NULL;
	if (conf_load_string(&c, "fuzz", text, &err) == 0) {
		if (conf_check(&c, &err) < 0)
			free(err);
	} else {
		free(err);
	}
	conf_free(&c);
	free(text);
	return 0;
}
