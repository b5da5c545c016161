#ifndef UVWEBSOCKET_CLIBUV_SHIM_H
#define UVWEBSOCKET_CLIBUV_SHIM_H
#include <uv.h>
#endif
