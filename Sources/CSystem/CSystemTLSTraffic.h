// Private to CSystem: how the server context and a new server connection prepare for the hand-over of the
// traffic keys after the handshake (CSystemTLSTraffic.c).
#ifndef CSYSTEM_TLS_TRAFFIC_H
#define CSYSTEM_TLS_TRAFFIC_H

#include "CSystem.h"

// Installs the keylog and message callbacks that record, per connection, the TLS 1.3 traffic secrets and the
// number of records already protected with the newest keys.
void CSystem_tls_capture_traffic(CSystem_TLSContext *context);
// Gives a new server connection the place those callbacks write to (its app data). 0 when out of memory.
int CSystem_tls_attach_traffic(CSystem_TLS *tls);
// Frees that place, if the connection has one.
void CSystem_tls_capture_free(CSystem_TLS *tls);

#endif
