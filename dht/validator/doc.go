// Package validator holds record validators compatible with hivemind's (spec/hivemind-dht.md §7):
// they implement dht.RecordValidator, so a dht.Node signs, validates and strips records exactly as a
// Python peer configured with the same validators would.
//
//   - RSASignature is hivemind's RSASignatureValidator (priority 10): a record whose key or subkey
//     holds an owner marker "[owner:<OpenSSH ssh-rsa key>]" must carry exactly one
//     "[signature:<base64>]" made by that key (RSA-PSS, SHA-256, MGF1-SHA-256, maximum salt length)
//     over msgpack((key, subkey, value without signature, expiration)).
//   - Schema is hivemind's SchemaValidator (priority 0) for pydantic v1 models, described as data
//     (SchemaConfig, JSON-serializable so it can travel to a worker process): strict or lax int,
//     float, bool, bytes and str fields with bounds and regexes, dictionaries, optional values and
//     nested models, with pydantic's verdicts (a value is accepted only if parsing it needs no type
//     conversion, by Python's == rule).
//   - Composite is hivemind's CompositeValidator: validators merged and ordered by priority, signing
//     in ascending order, validating and stripping in descending order.
//
// AlbertMetricsSchema and ProgressSchema describe the schemas of hivemind's albert example and of
// its ProgressTracker.
//
// Every validator here is safe for concurrent use and never panics on hostile records: a record it
// cannot make sense of is invalid, with a reason. Differences from hivemind are listed on each type;
// the ones a Python peer could notice are fixes of hivemind exceptions (spec §14, vectors README).
package validator
