package main

import (
	"flag"
	"io"
	"log/slog"
	"time"

	"github.com/hivemind-go/hivemind/examples/albert"
	"github.com/hivemind-go/hivemind/internal/cli"
)

// newFlagSet returns an albert command's flag set (see cli.NewFlagSet).
func newFlagSet(name, about string, stderr io.Writer) *flag.FlagSet {
	return cli.NewFlagSet(cli.Usage{Prog: prog, Name: name, About: about}, stderr)
}

// commonFlags are the options of every command: the run and this peer's DHT and logs.
type commonFlags struct {
	runID          string
	initialPeers   cli.List
	hostMaddrs     cli.List
	announceMaddrs cli.List
	identityPath   string
	keyFile        string
	logLevel       cli.Level
	workerLogLevel cli.Level
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	c.workerLogLevel.Level = slog.LevelWarn
	fs.StringVar(&c.runID, "run-id", albert.DefaultRunID, "the run: keys are <run-id>_metrics and <run-id>_progress")
	fs.Var(&c.initialPeers, "initial-peers", "multiaddrs of peers to join, each ending in /p2p/<peer id> (repeatable; comma separated)")
	fs.Var(&c.hostMaddrs, "host-maddrs", "multiaddrs to listen on (default "+albert.DefaultHostMaddr+": loopback only)")
	fs.Var(&c.announceMaddrs, "announce-maddrs", "multiaddrs to announce instead of the listen addresses")
	fs.StringVar(&c.identityPath, "identity-path", "", "libp2p identity file, created when missing (default: an ephemeral identity)")
	fs.StringVar(&c.keyFile, "key-file", "", "PEM RSA key signing this peer's records, created when missing (default: a temporary key)")
	fs.Var(&c.logLevel, "log-level", "log level: debug, info (the default), warn or error")
	fs.Var(&c.workerLogLevel, "worker-log-level", "level of the DHT worker's relayed logs")
}

func (c *commonFlags) nodeConfig(name string, workerLogger *slog.Logger) albert.NodeConfig {
	return albert.NodeConfig{
		Name:           name,
		RunID:          c.runID,
		InitialPeers:   c.initialPeers,
		HostMaddrs:     c.hostMaddrs,
		AnnounceMaddrs: c.announceMaddrs,
		IdentityPath:   c.identityPath,
		KeyFile:        c.keyFile,
		Logger:         workerLogger,
	}
}

// loggers returns the program's logger and the one for relayed worker logs.
func (c *commonFlags) loggers(stderr io.Writer) (*slog.Logger, *slog.Logger) {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.logLevel.Level}))
	workerLogger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.workerLogLevel.Level}))
	return logger, workerLogger
}

// trainerFlags are a trainer's workload and tracker options.
type trainerFlags struct {
	batchSize            int64
	samplesPerSecond     float64
	targetBatchSize      int64
	statisticsExpiration time.Duration
	minRefresh           time.Duration
	maxRefresh           time.Duration
	defaultRefresh       time.Duration
	metadataExpiration   time.Duration
}

// trainerDefaults are the defaults of a command's trainer flags (albert's, or the demo's).
type trainerDefaults struct {
	batchSize, target                        int64
	samplesPerSecond                         float64
	minRefresh, maxRefresh, defaultRefresh   time.Duration
	metadataExpiration, statisticsExpiration time.Duration
}

var albertTrainerDefaults = trainerDefaults{
	batchSize: albert.DefaultBatchSize, target: albert.DefaultTargetBatchSize,
	samplesPerSecond: albert.DefaultSamplesPerSecond,
	minRefresh:       albert.DefaultMinRefreshPeriod, maxRefresh: albert.DefaultMaxRefreshPeriod,
	defaultRefresh: albert.DefaultDefaultRefresh, metadataExpiration: albert.DefaultMetadataExpiration,
	statisticsExpiration: albert.DefaultStatisticsExpiration,
}

func (t *trainerFlags) register(fs *flag.FlagSet, d trainerDefaults) {
	fs.Int64Var(&t.batchSize, "batch-size", d.batchSize, "samples per fake mini-step")
	fs.Float64Var(&t.samplesPerSecond, "samples-per-second", d.samplesPerSecond, "the fake workload's throughput")
	fs.Int64Var(&t.targetBatchSize, "target-batch-size", d.target, "samples the collaboration accumulates per epoch (same on every peer)")
	fs.DurationVar(&t.statisticsExpiration, "statistics-expiration", d.statisticsExpiration, "how long a trainer's metrics live in the DHT")
	fs.DurationVar(&t.minRefresh, "min-refresh-period", d.minRefresh, "tracker: shortest wait between two progress fetches")
	fs.DurationVar(&t.maxRefresh, "max-refresh-period", d.maxRefresh, "tracker: longest wait between two progress fetches")
	fs.DurationVar(&t.defaultRefresh, "default-refresh-period", d.defaultRefresh, "tracker: wait between fetches while no peer reports")
	fs.DurationVar(&t.metadataExpiration, "metadata-expiration", d.metadataExpiration, "tracker: how long a progress report lives in the DHT")
}

func (t *trainerFlags) config(runID string, logger *slog.Logger) albert.TrainerConfig {
	return albert.TrainerConfig{
		RunID:                runID,
		BatchSize:            t.batchSize,
		SamplesPerSecond:     t.samplesPerSecond,
		StatisticsExpiration: t.statisticsExpiration,
		Tracker: albert.TrackerConfig{
			Progress: albert.ProgressParams{
				TargetBatchSize:      t.targetBatchSize,
				MinRefreshPeriod:     t.minRefresh,
				MaxRefreshPeriod:     t.maxRefresh,
				DefaultRefreshPeriod: t.defaultRefresh,
			},
			MetadataExpiration: t.metadataExpiration,
		},
		Logger: logger,
	}
}

func (t *trainerFlags) validate() error {
	switch {
	case t.batchSize <= 0:
		return cli.Usagef("--batch-size must be positive")
	case !(t.samplesPerSecond > 0):
		return cli.Usagef("--samples-per-second must be positive")
	case t.targetBatchSize <= 0:
		return cli.Usagef("--target-batch-size must be positive")
	}
	return nil
}
