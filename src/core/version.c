/* moonship's version string and those of the libraries linked in (bug reports want both). */
#include <curl/curl.h>
#include <stdio.h>
#include <uv.h>
#include <yaml.h>
#include <zlib.h>

#include "version.h"

const char *ms_version(void)
{
    return MOONSHIP_VERSION;
}

void ms_version_libraries(char *buf, unsigned long size)
{
    snprintf(buf, size, "libuv %s, %s, libyaml %s, zlib %s", uv_version_string(), curl_version(),
             yaml_get_version_string(), zlibVersion());
}
