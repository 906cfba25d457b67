// Package browsertest runs the project's pages in a real browser from Go
// tests: Debian's Chromium, headless, driven by playwright-core from the
// node scripts in tests/browser (never a browser that playwright would
// download).
//
// Need checks what a browser test needs (chromium, node, the npm packages
// of tests/browser) and skips the test with a clear message when something
// is missing — or fails it under CI (the CI environment variable set), where
// .ci/run installs them, so that a browser test can never pass by skipping
// there.
//
// How data flows: a Go test builds what it needs (nodes, a bootstrap) on
// loopback, then
//
//	Need(t) ─► Run(ctx, t, "play.mjs", args…) or PlayPage(ctx, t, PlayOptions)
//	  ─► node tests/browser/<script> ─► playwright-core ─► Chromium (headless) ─► the page
//	  ─► the script's last stdout line (JSON, e.g. Play) ─► the test's assertions
//	     (the script's stderr goes to the test log)
package browsertest
