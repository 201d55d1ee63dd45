// Command clientfloor: the floor under the Gin Orders peer's calls to Books,
// the Go counterpart of bench/peers/libsoup-client-floor.c.
//
// net/http's client used the way Go users use it: CONCURRENCY goroutines,
// each sending GETs of URL in a loop over keep-alive connections (the
// Transport keeps CONCURRENCY idle connections per host, as the Gin Orders
// peer does) and reading each answer whole, for DURATION seconds after
// WARMUP. It prints the calls made, calls a second and the CPU (user +
// system, getrusage) of its own process per call, in the same format as
// libsoup-client-floor.
//
// Environment: URL (required), CONCURRENCY (default 64), DURATION (seconds,
// default 10), WARMUP (seconds, default 2). Exits non-zero if a call failed
// or answered other than 200.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func envInt(name string, fallback int) int {
	value := os.Getenv(name)
	if value == "" {
		return fallback
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < 1 || n > 100000 {
		fmt.Fprintf(os.Stderr, "clientfloor: %s must be 1..100000\n", name)
		os.Exit(1)
	}
	return n
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return float64(usage.Utime.Sec+usage.Stime.Sec) + float64(usage.Utime.Usec+usage.Stime.Usec)/1e6
}

func main() {
	url := os.Getenv("URL")
	if url == "" {
		fmt.Fprintln(os.Stderr, "clientfloor: URL is required")
		os.Exit(1)
	}
	concurrency := envInt("CONCURRENCY", 64)
	duration := time.Duration(envInt("DURATION", 10)) * time.Second
	warmup := time.Duration(envInt("WARMUP", 2)) * time.Second
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}

	var counting atomic.Bool
	var calls atomic.Uint64
	var failed atomic.Bool
	stopAt := time.Now().Add(warmup + duration)
	var wg sync.WaitGroup
	for i := 0; i < concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stopAt) && !failed.Load() {
				resp, err := client.Get(url)
				if err != nil {
					fmt.Fprintln(os.Stderr, "clientfloor:", err)
					failed.Store(true)
					return
				}
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					fmt.Fprintln(os.Stderr, "clientfloor: status", resp.StatusCode, err)
					failed.Store(true)
					return
				}
				if counting.Load() {
					calls.Add(1)
				}
			}
		}()
	}
	time.Sleep(warmup)
	counting.Store(true)
	started := time.Now()
	cpuAtStart := cpuSeconds()
	wg.Wait()
	elapsed := time.Since(started).Seconds()
	n := calls.Load()
	if failed.Load() || n == 0 {
		os.Exit(1)
	}
	fmt.Printf("calls %d calls/s %.0f cpu_us/call %.1f concurrency %d\n",
		n, float64(n)/elapsed, (cpuSeconds()-cpuAtStart)*1e6/float64(n), concurrency)
}
