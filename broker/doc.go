// Package broker is the trust boundary of tapproof's NATS broker: who may
// connect, which account each party lands in, and what each may publish or
// subscribe to.
//
// tapproof uses NATS auth callout (https://docs.nats.io/running-a-nats-service/configuration/securing_nats/auth_callout).
// A device connects with the NATS user nkey that is its Ed25519 signing key,
// the key enrolled in the log. The server hands the connection to
// tapproof's Authorizer, which checks the nonce signature, looks the key up
// among the enrolled devices, certified labs and state reviewers, and
// answers with a user JWT that binds the connection to the DEVICES or LABS
// account and allows it exactly one publish subject (its own) and its own
// reply inbox. Nothing else can connect: tapproof's own services and the
// operator's CLI are nkey users listed in the configuration, and every
// other connection, anonymous or not, is refused by the callout.
//
// Each of tapproof's users has only the rights its role needs: the
// service user (tapproof serve's streams, buckets and intake) no $SYS
// subject, the callout user nothing but the authorization requests and
// one answer to each, the operator's user reads only. The server encrypts
// each authorization request to the callout's curve key (Keys.XKey) and
// the Authorizer encrypts its answer back; the Authorizer decides them
// with a fixed pool of workers from a bounded queue, and each account's
// connections are bounded (Limits).
//
// Auth callout rather than decentralized JWT because the log is already the
// identity authority: enrolling a device is what lets it connect, without a
// second set of credentials to issue, store on the device and keep in sync.
// It works the same for the embedded server and for an external cluster,
// which loads the configuration Config renders. Revoking a device refuses
// its next connection at once, and Disconnect closes the ones it has,
// through the system account.
//
// Devices and labs never reach JetStream. Their accounts import one
// service each from the TAPPROOF account, mapping tapproof.readings.> (and
// the lab subjects) onto tapproof.intake.>, where ingest's intake
// republishes each message into the readings stream under a message id of
// its own. A device therefore cannot call the JetStream API, read a KV
// bucket, or squat another device's Nats-Msg-Id.
//
// broker imports only the root package.
package broker
