package jobs

import (
	"fmt"
	"log/slog"

	"riverqueue.com/riverui"
)

// NewUI builds River's own UI over client, served under prefix (such as
// "/riverui"): pages and a JSON API that show the jobs by state, queue
// and kind, each job's arguments, attempts and errors, and the queues,
// and that let their user cancel, retry or delete jobs and pause or
// resume queues. It reads River's tables through client's database/sql
// driver, on the job engine's pool.
//
// The UI has no authentication of its own: whoever mounts it admits the
// operator only. Its background work (counts of jobs by state, kept
// fresh) runs from Start until Start's context ends; without it the UI
// counts on each request.
func NewUI(client *Client, prefix string, log *slog.Logger) (*riverui.Handler, error) {
	ui, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		Logger:    log,
		Prefix:    prefix,
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: river ui: %w", err)
	}
	return ui, nil
}
