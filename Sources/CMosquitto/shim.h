// libmosquitto (Debian: libmosquitto-dev), Eclipse Mosquitto's MQTT client library: the element's
// and the fer tool's publishing to a message broker.
#include <mosquitto.h>
