/* The version of moonship and of the libraries it runs on, for `moonship version`. */
#ifndef MS_VERSION_H
#define MS_VERSION_H

const char *ms_version(void);
/* Writes "libuv X, libcurl Y, ..." into buf (always NUL-terminated). */
void ms_version_libraries(char *buf, unsigned long size);

#endif
