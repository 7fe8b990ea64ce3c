/* dns_fuzz.c - libFuzzer target for dns_parse_mx (MX RDATA from the wire). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mta/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[256];
	unsigned pref;
	if (dns_parse_mx(data, size, &pref, name, sizeof name) == 0) {
		size_t n = strlen(name);
		if (n >= sizeof name || pref > 65535)
			__builtin_trap();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 0x7f)
				__builtin_trap();
	}
	/* a small output buffer must fail cleanly, never overflow */
	char small[8];
	(void)dns_parse_mx(data, size, &pref, small, sizeof small);
	return 0;
}
