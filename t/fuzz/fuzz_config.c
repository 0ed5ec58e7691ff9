/* libFuzzer target: the configuration loader (jansson + validation +
 * error positions) on arbitrary file contents. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../manager/config.h"
#include "../../manager/jsonpos.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char path[] = "/tmp/cpm-fuzz-config-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	char err[1024];
	struct config *cf = config_load(path, err, sizeof(err));
	config_free(cf);
	unlink(path);
	struct jsonpos_step steps[] = {{"backends", 0}, {NULL, 1}, {"root", 0}};
	int line, col;
	jsonpos_locate((const char *)data, size, steps, 3, 1, &line, &col);
	return 0;
}
