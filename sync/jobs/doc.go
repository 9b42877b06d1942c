// Package jobs sets up the hub's one job engine, River, on the hub's own
// PostgreSQL: its schema (applied by `hubd migrate` after the hub's own
// migrations), its connection pool, its queues and their worker limits,
// how long finished jobs are kept, how soon a job a killed process left
// running is rescued, and its metrics in the hub's Prometheus registry.
//
// Domain packages decide what a job does (they register River workers and
// periodic jobs in a Config); River decides when and where it runs: jobs
// are claimed with SELECT … FOR UPDATE SKIP LOCKED, so every `hubd serve`
// is a worker and any number of replicas share the work. Job arguments
// carry ids, never personal data.
//
// NewUI builds River's own UI over the engine's client, for the api
// package to serve to the operator.
package jobs
