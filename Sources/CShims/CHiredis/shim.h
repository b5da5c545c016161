#ifndef UVWEBSOCKET_CHIREDIS_SHIM_H
#define UVWEBSOCKET_CHIREDIS_SHIM_H
/* hiredis parses RESP (its reader) and makes the start-up check (its
   blocking client); the backplane's sockets are UVKit's, on the server's
   own loop. */
#include <hiredis/hiredis.h>
#endif
