package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klasterina/hub/lti/ltitest"
)

// A launch round trip as the benchmarks measure it: the browser's GET of
// /lti/login (the hub answers with the redirect, state and cookie), then
// its POST of the platform's id_token to /lti/launch (the hub validates,
// records and answers with the landing page), over real HTTP on loopback
// into PostgreSQL. The platform's RS256 signature — about 1 ms of the LMS's
// CPU — is made between the two with the benchmark timer stopped ("signed
// ahead"), so the figures are the hub's.

type pendingLaunch struct {
	state, nonce, cookie string
	idToken              string
}

func (ph *platformHub) benchLogin(c *http.Client) (pendingLaunch, error) {
	u := ph.p.LoginURL(ph.url+"/lti/login", ph.url+"/lti/launch", ltitest.Launch{})
	res, err := c.Get(u)
	if err != nil {
		return pendingLaunch{}, err
	}
	drain(res)
	loc, _ := url.Parse(res.Header.Get("Location"))
	ck := res.Cookies()[0]
	return pendingLaunch{state: loc.Query().Get("state"), nonce: loc.Query().Get("nonce"), cookie: ck.Name + "=" + ck.Value}, nil
}

func (ph *platformHub) benchLaunch(c *http.Client, p pendingLaunch) error {
	body := url.Values{"id_token": {p.idToken}, "state": {p.state}}.Encode()
	req, _ := http.NewRequest("POST", ph.url+"/lti/launch", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", p.cookie)
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	drain(res)
	if res.StatusCode != 200 {
		return &launchError{res.StatusCode}
	}
	return nil
}

// drain reads the body so the connection is reused, as a browser's is.
func drain(res *http.Response) {
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
}

// benchLaunchOf is launch i: a class of 200 students in one course, each
// launching several times, as a course's busy minute looks.
func benchLaunchOf(ph *platformHub, i int) ltitest.Launch {
	return ltitest.Launch{Subject: fmt.Sprintf("student-%d", i%200), TargetLink: ph.url + "/lti/launch"}
}

type launchError struct{ status int }

func (e *launchError) Error() string { return "launch status " + http.StatusText(e.status) }

func benchClient(ph *platformHub) *http.Client {
	tr := ph.client.Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// parallel runs fn(i) for i in [0, n) on workers goroutines.
func parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// machineBusy is the CPU time all processes used so far (PostgreSQL
// included), from /proc/stat; zero where there is none.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	fields := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	var busy int64
	for i, f := range fields[1:] {
		n, _ := strconv.ParseInt(f, 10, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLaunchRoundTrip reports round trips per second, the process CPU
// per round trip (the hub and the benchmark's own HTTP client together: an
// upper bound on the hub's), the whole machine's CPU per round trip
// (PostgreSQL included), the login's share of the wall time, and
// allocations.
//
//	go test ./api -run '^$' -bench LaunchRoundTrip -benchtime 3000x
func BenchmarkLaunchRoundTrip(b *testing.B) {
	ph := newPlatformHub(b)
	c := benchClient(ph)
	const workers = 16
	b.ReportAllocs()
	var elapsed, cpu, loginTime, machine time.Duration
	for batch := 0; batch < b.N; batch += 1000 {
		n := min(1000, b.N-batch)
		pending := make([]pendingLaunch, n)
		start, cpu0, m0 := time.Now(), cpuTime(), machineBusy()
		err := parallel(n, workers, func(i int) (err error) { pending[i], err = ph.benchLogin(c); return err })
		elapsed, cpu, loginTime, machine = elapsed+time.Since(start), cpu+cpuTime()-cpu0, loginTime+time.Since(start), machine+machineBusy()-m0
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		for i := range pending {
			pending[i].idToken, _ = ph.p.IDToken(pending[i].nonce, benchLaunchOf(ph, batch+i))
		}
		b.StartTimer()
		start, cpu0, m0 = time.Now(), cpuTime(), machineBusy()
		err = parallel(n, workers, func(i int) error { return ph.benchLaunch(c, pending[i]) })
		elapsed, cpu, machine = elapsed+time.Since(start), cpu+cpuTime()-cpu0, machine+machineBusy()-m0
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "launches/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/launch")
	b.ReportMetric(float64(loginTime.Microseconds())/float64(b.N), "login-µs/launch")
	b.ReportMetric(float64(machine.Microseconds())/float64(b.N), "machine-cpu-µs/launch")
}

// BenchmarkLaunchLatencyAt500 paces round trips at 500 per second and
// reports the latency percentiles of a whole round trip (login + launch).
//
//	go test ./api -run '^$' -bench LaunchLatencyAt500 -benchtime 5000x
func BenchmarkLaunchLatencyAt500(b *testing.B) {
	ph := newPlatformHub(b)
	c := benchClient(ph)
	const rate = 500
	// Sign ahead: logins happen in the paced loop, so the nonces must be
	// known first; a warm-up login per launch gives them, then the tokens
	// are signed before the clock starts.
	pending := make([]pendingLaunch, b.N)
	if err := parallel(b.N, 16, func(i int) (err error) { pending[i], err = ph.benchLogin(c); return err }); err != nil {
		b.Fatal(err)
	}
	for i := range pending {
		pending[i].idToken, _ = ph.p.IDToken(pending[i].nonce, benchLaunchOf(ph, i))
	}
	latencies := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	var failed atomic.Int64
	b.ResetTimer()
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	for i := range b.N {
		<-tick.C
		wg.Go(func() {
			start := time.Now()
			// The login's own cost is measured with a fresh login whose
			// state is not used; the launch uses the signed-ahead one.
			if _, err := ph.benchLogin(c); err != nil {
				failed.Add(1)
			}
			if err := ph.benchLaunch(c, pending[i]); err != nil {
				failed.Add(1)
			}
			latencies[i] = time.Since(start)
		})
	}
	wg.Wait()
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
}

// BenchmarkFirstLaunch measures first launches: each by a learner the hub
// has never seen, so every one creates a user, a platform identity and a
// membership in a course that exists. 32 browsers launch at once. The
// logins and the platform's signatures happen with the timer stopped and
// outside the CPU counts, so the figures are the launch's alone: launches
// per second, the process CPU per launch (hub and HTTP client together, an
// upper bound on the hub's), the machine's (PostgreSQL included) and
// allocations.
//
//	go test ./api -run '^$' -bench FirstLaunch -benchtime 3000x
func BenchmarkFirstLaunch(b *testing.B) {
	ph := newPlatformHub(b)
	c := benchClient(ph)
	const workers = 32
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	b.ReportAllocs()
	var elapsed, cpu, machine time.Duration
	for batch := 0; batch < b.N; batch += 1000 {
		n := min(1000, b.N-batch)
		b.StopTimer()
		pending := make([]pendingLaunch, n)
		// Logins at most 16 at once, as in BenchmarkLaunchRoundTrip: more
		// concurrent registration lookups on a cold cache would be over
		// the per-source login limit.
		if err := parallel(n, 16, func(i int) (err error) { pending[i], err = ph.benchLogin(c); return err }); err != nil {
			b.Fatal(err)
		}
		for i := range pending {
			l := ltitest.Launch{Subject: fmt.Sprintf("learner-%s-%d", run, batch+i), TargetLink: ph.url + "/lti/launch"}
			pending[i].idToken, _ = ph.p.IDToken(pending[i].nonce, l)
		}
		b.StartTimer()
		start, cpu0, m0 := time.Now(), cpuTime(), machineBusy()
		err := parallel(n, workers, func(i int) error { return ph.benchLaunch(c, pending[i]) })
		elapsed, cpu, machine = elapsed+time.Since(start), cpu+cpuTime()-cpu0, machine+machineBusy()-m0
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "launches/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/launch")
	b.ReportMetric(float64(machine.Microseconds())/float64(b.N), "machine-cpu-µs/launch")
}
