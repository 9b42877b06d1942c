// Package roster keeps the hub's copy of each course's roster in step with
// the LMS, through LTI Names and Role Provisioning Services 2.0.
//
// A sync of a course is a run (table roster_syncs): requested after the
// first launch into the course, by the tenant's schedule (every 6 hours
// by default, with jitter, or off), over REST, or by `hubd roster-sync`.
// At most one run of a course is queued or running; another request joins
// it. The run is a River job on the roster queue: the worker takes the
// run's lease, asks the platform for a service token (lti/servicetoken),
// pulls membership pages (lti/nrps) one at a time, the next one fetched
// while the last is applied, and applies each page as a diff in one
// transaction together with the run's progress and its cursor (the next
// page's URL). A crash or a stop leaves a consistent roster and a cursor;
// River runs the job again (rescued within minutes) and it resumes there.
//
// A full sync marks the members it lists with its run id; when it ends,
// members of the course it did not list are marked removed (never
// deleted: their history stays). A differences sync (the platform's
// rel="differences" link from the last sync, offered by Moodle and Canvas)
// applies only what changed; a platform that no longer honours the link
// gets a full sync instead. A page never overwrites what a launch newer
// than the page wrote.
//
// Platform faults: 429 and 503 honour Retry-After, Canvas's 403 "Rate
// Limit Exceeded" is throttling; other 5xx, timeouts and dropped
// connections back off exponentially with jitter; then the run fails with
// the platform's answer recorded. A malformed page fails the run and
// changes nothing after the last complete page. A course the platform no
// longer knows (404) is not scheduled again until its next launch.
package roster
