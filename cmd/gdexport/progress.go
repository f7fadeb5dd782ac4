package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progressAfter is how many findings publish sends before it shows
// progress: small inputs finish before a report would help.
const progressAfter = 2000

// progress reports how far publish is: on a terminal a bar redrawn in place
// (with the rate, and the share done when the total is known), otherwise a
// plain line every few seconds. Safe for concurrent use.
type progress struct {
	w        io.Writer
	tty      bool
	every    time.Duration
	start    time.Time
	mu       sync.Mutex
	last     time.Time
	shown    bool
	label    string
	done     func() int64   // findings acknowledged so far
	fraction func() float64 // share of the input read, or -1 when unknown
}

func newProgress(w io.Writer, done func() int64) *progress {
	p := &progress{w: w, every: 5 * time.Second, start: time.Now(), done: done, fraction: func() float64 { return -1 }}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty, p.every = true, 200*time.Millisecond
	}
	return p
}

// input names what is being read now and how far in it is.
func (p *progress) input(label string, fraction func() float64) {
	p.mu.Lock()
	p.label, p.fraction = label, fraction
	p.mu.Unlock()
}

// tick redraws the report when it is due.
func (p *progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	n := p.done()
	if n < progressAfter || now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	p.draw(n, now)
}

func (p *progress) draw(n int64, now time.Time) {
	rate := float64(n) / max(now.Sub(p.start).Seconds(), 0.001)
	frac := p.fraction()
	if !p.tty {
		line := fmt.Sprintf("publish: %d findings acknowledged, %.0f/s", n, rate)
		if frac >= 0 {
			line += fmt.Sprintf(", %s %.0f%% read", p.label, 100*frac)
		}
		fmt.Fprintln(p.w, line)
		return
	}
	const width = 30
	bar := strings.Repeat("·", width)
	if frac >= 0 {
		k := int(frac*width + 0.5)
		bar = strings.Repeat("█", min(k, width)) + strings.Repeat("·", width-min(k, width))
		fmt.Fprintf(p.w, "\r%s %3.0f%%  %d findings  %.0f/s  %s ", bar, 100*frac, n, rate, p.label)
	} else {
		fmt.Fprintf(p.w, "\r%d findings  %.0f/s  %s ", n, rate, p.label)
	}
	p.shown = true
}

// finish ends the bar's line on a terminal.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.shown {
		p.draw(p.done(), time.Now())
		fmt.Fprintln(p.w)
	}
}
