// Package browser holds the real-browser suite of the project's pages: the supervisor's status page
// and the albert monitor's dashboard, loaded in headless Chromium through chromedp against real
// processes (a supervised pool of worker processes, an albert demo run), their visible text and plot
// data checked against the JSON the pages are drawn from.
//
// The browser is Debian's chromium-headless-shell or chromium (bash .ci/run installs it when
// missing), or the binary named by HIVEMIND_BROWSER. Without one the suite skips with a message
// saying so, and fails when CI=true. Screenshots of each page go to a directory the suite prints
// (go test -v ./test/browser/ shows it), or to HIVEMIND_SCREENSHOTS when set.
package browser
