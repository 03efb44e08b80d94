// Package sync keeps a device in step with its fleet backend over MQTT:
// gallery operations come down and are applied in revision order, match
// events and acknowledgements go up through the store's outbox
// (store-and-forward, so nothing is lost while offline), and the device's
// status is a retained message with a last will.
//
// The wire protocol (topics, JSON payloads and their schemas) is in
// README.md next to this file; protocol.go is its code. Only this package
// imports the MQTT client (github.com/eclipse/paho.mqtt.golang).
//
// The package is named after its directory; import it under another name
// (fleetsync) where the standard library's sync is also used.
package sync
