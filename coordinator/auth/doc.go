// Package auth holds how people prove who they are, apart from HTTP
// routing: password hashing with argon2id, the rules a password must meet,
// session and CSRF secrets, and login throttling. The API calls it; it
// knows nothing of routes or of the state machine.
//
// # Passwords
//
// Passwords are hashed with argon2id (RFC 9106) with the second
// recommended parameter set: 3 passes over 64 MiB with 4 lanes, a 16-byte
// random salt and a 32-byte key, stored in the PHC string form
// $argon2id$v=19$m=65536,t=3,p=4$<salt>$<key>. Only the hash leaves the
// server that received the password. Verification reads the parameters
// from the stored hash, so raising them later leaves old hashes valid. At
// most two hashes are computed at once per server (each holds 64 MiB).
//
// # Sessions and CSRF
//
// A session is a token of kind "session" with an expiry: its secret is the
// value of the proximity_session cookie (HttpOnly, Secure,
// SameSite=Strict). The CSRF token a browser must echo in X-CSRF-Token on
// unsafe requests is derived from the session secret (a keyed hash), so it
// needs no storage and is worthless without the session it belongs to.
package auth
