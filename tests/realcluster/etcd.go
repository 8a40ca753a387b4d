package main

// etcd, embedded: the same server the apiserver talks to in a real cluster, as a library,
// listening on loopback ports that the kernel picks.

import (
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// startEtcd starts a single-member etcd with its data under dir and returns it with its
// client URL. logFile receives etcd's own (zap) log; "stderr" is accepted too.
func startEtcd(dir, logFile string, verbose bool) (*embed.Etcd, string, error) {
	cfg := embed.NewConfig()
	cfg.Name = "realcluster"
	cfg.Dir = filepath.Join(dir, "etcd")
	// Port 0 everywhere: etcd binds what the kernel gives and reports it below, so there is no
	// window where a port picked in advance is taken by someone else. The peer URL is never
	// dialled (one member), it only has to be the same string in the initial cluster.
	loop := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls = []url.URL{loop}
	cfg.AdvertiseClientUrls = []url.URL{loop}
	cfg.ListenPeerUrls = []url.URL{loop}
	cfg.AdvertisePeerUrls = []url.URL{loop}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ListenMetricsUrls = nil
	cfg.EnableGRPCGateway = false
	// The data lives as long as the process: fsync buys nothing but latency (it is what makes
	// a real etcd slow on a busy disk, and every write of the control plane waits for it).
	cfg.UnsafeNoFsync = true
	cfg.Logger = "zap"
	cfg.LogOutputs = []string{logFile}
	cfg.LogLevel = "warn"
	if verbose {
		cfg.LogLevel = "info"
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, "", fmt.Errorf("etcd: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", fmt.Errorf("etcd: not ready after 60 s")
	}
	if len(e.Clients) == 0 {
		e.Close()
		return nil, "", fmt.Errorf("etcd: no client listener")
	}
	return e, "http://" + e.Clients[0].Addr().String(), nil
}
