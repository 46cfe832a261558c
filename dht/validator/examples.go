package validator

// BytesWithPublicKey is hivemind's BytesWithPublicKey type: (lax) bytes that must match
// OwnerMarkerPattern. Schemas use it as the key type of a dictionary so that every subkey carries an
// owner marker, which makes RSASignature demand the owner's signature on every entry.
func BytesWithPublicKey() Type {
	return Type{Kind: KindBytes, Regex: OwnerMarkerPattern, RegexMatch: RegexPythonMatch, OwnerMarkerRequired: true}
}

// AlbertMetricsSchema is the schema of hivemind's albert example (examples/albert/utils.py,
// make_validators(run_id)): key "<runID>_metrics", one entry per trainer under its owner-marker
// subkey, each a LocalMetrics {step: StrictInt ≥ 0, samples_per_second: StrictFloat ≥ 0.0,
// samples_accumulated: StrictInt ≥ 0, loss: StrictFloat, mini_steps: StrictInt ≥ 0}. Pair it with an
// RSASignature, as albert does.
func AlbertMetricsSchema(runID string) SchemaConfig {
	localMetrics := Type{Kind: KindModel, Model: "LocalMetrics", Extra: ExtraForbid, Fields: []Field{
		{Name: "step", Required: true, Type: Type{Kind: KindInt, Strict: true, Ge: Int(0)}},
		{Name: "samples_per_second", Required: true, Type: Type{Kind: KindFloat, Strict: true, Ge: Float(0)}},
		{Name: "samples_accumulated", Required: true, Type: Type{Kind: KindInt, Strict: true, Ge: Int(0)}},
		{Name: "loss", Required: true, Type: Type{Kind: KindFloat, Strict: true}},
		{Name: "mini_steps", Required: true, Type: Type{Kind: KindInt, Strict: true, Ge: Int(0)}},
	}}
	key := BytesWithPublicKey()
	return SchemaConfig{
		AllowExtraKeys: true,
		Models: []Model{{Name: "MetricSchema", Prefix: runID, Extra: ExtraForbid, Fields: []Field{
			{Name: "metrics", Type: Type{Kind: KindMap, Key: &key, Value: &localMetrics}},
		}}},
	}
}

// ProgressSchema is the schema hivemind's ProgressTracker adds for a run (prefix = the run id): key
// "<prefix>_progress", one entry per peer under its owner-marker subkey, each a LocalTrainingProgress
// {peer_id: bytes, epoch: StrictInt ≥ 0, samples_accumulated: StrictInt ≥ 0, samples_per_second:
// StrictFloat ≥ 0.0, time: StrictFloat, client_mode: StrictBool} or None (the tombstone a tracker
// stores when it shuts down). Pair it with an RSASignature.
func ProgressSchema(prefix string) SchemaConfig {
	progress := Type{Kind: KindModel, Model: "LocalTrainingProgress", Extra: ExtraForbid, Fields: []Field{
		{Name: "peer_id", Required: true, Type: Type{Kind: KindBytes}},
		{Name: "epoch", Required: true, Type: Type{Kind: KindInt, Strict: true, Ge: Int(0)}},
		{Name: "samples_accumulated", Required: true, Type: Type{Kind: KindInt, Strict: true, Ge: Int(0)}},
		{Name: "samples_per_second", Required: true, Type: Type{Kind: KindFloat, Strict: true, Ge: Float(0)}},
		{Name: "time", Required: true, Type: Type{Kind: KindFloat, Strict: true}},
		{Name: "client_mode", Required: true, Type: Type{Kind: KindBool, Strict: true}},
	}}
	key := BytesWithPublicKey()
	return SchemaConfig{
		AllowExtraKeys: true,
		Models: []Model{{Name: "TrainingProgressSchema", Prefix: prefix, Extra: ExtraForbid, Fields: []Field{
			{Name: "progress", Type: Type{Kind: KindMap, Key: &key, Value: &Type{Kind: KindOptional, Of: &progress}}},
		}}},
	}
}
