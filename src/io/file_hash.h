/* The SHA-256 of a file's bytes (what `sha256sum FILE` prints), read in 1 MiB pieces. */
#ifndef BADAM_IO_FILE_HASH_H
#define BADAM_IO_FILE_HASH_H

#include "badam/status.h"

badam_status io_sha256_file(const char *path, char hex[65], badam_error *err);

#endif
