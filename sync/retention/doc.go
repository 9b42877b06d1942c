// Package retention runs the tenants' retention as background jobs of
// the hub's job engine (River). What a run deletes, and how it records
// itself, is agreements.Retention's; this package decides when runs
// happen and hands each to a worker.
//
// On the leader replica a periodic job (every HUB_RETENTION_INTERVAL, a
// day by default, and once when the leader starts) queues a run for each
// active tenant; a tenant admin queues one at once over REST. Either way
// the run (a row of retention_runs) and its job are written in one
// transaction, and a tenant has at most one run queued or running: a
// second request joins it, and its job, unique per run, is not queued
// twice. Every replica works the maintenance queue. A worker near its
// job's timeout snoozes the job and the next try carries on; a run whose
// job fails for good is recorded as failed. Job arguments carry ids only.
package retention
