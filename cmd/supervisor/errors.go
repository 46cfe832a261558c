package main

import "errors"

// Errors of the supervisor's commands that tests tell apart (command-line mistakes are
// *cli.UsageError). Check them with errors.Is.
var (
	// errTooFewReplicas: store's value was accepted by fewer peers than --min-replicas.
	errTooFewReplicas = errors.New("too few replicas accepted the value")
)
