package interop

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// EnvSwitch must be "1" for the harness to run.
const EnvSwitch = "PETREL_INTEROP"

// tools the harness executes; scripts/install-test-deps.sh installs them.
var tools = []string{charonPath, swanctlPath, "/usr/bin/tshark", "/usr/bin/iperf3", "/usr/bin/ping",
	"/usr/sbin/nft", "/usr/bin/dumpcap", filepath.Join(pluginDir, "libstrongswan-kernel-libipsec.so")}

var (
	gateOnce  sync.Once
	gateMsg   string
	gateFatal bool
)

// gateReason says why the harness cannot run here, or "" when it can.
// fatal is true when the harness was asked for (PETREL_INTEROP=1, root)
// but cannot run: that must be red, not a quiet skip.
func gateReason() (reason string, fatal bool) {
	gateOnce.Do(func() {
		gateMsg = computeGate()
		gateFatal = gateMsg != "" && os.Getenv(EnvSwitch) == "1" && os.Geteuid() == 0
	})
	return gateMsg, gateFatal
}

func computeGate() string {
	if os.Getenv(EnvSwitch) != "1" {
		return fmt.Sprintf("interop: skipped: set %s=1 and run as root to run the strongSwan interop harness", EnvSwitch)
	}
	if os.Geteuid() != 0 {
		return "interop: skipped: needs root (network namespaces, nftables, charon)"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "interop: skipped: no ip command (iproute2)"
	}
	if missing := missingTools(); len(missing) > 0 {
		return "interop: missing " + strings.Join(missing, ", ") + " (scripts/install-test-deps.sh installs them)"
	}
	return ""
}

func missingTools() []string {
	var missing []string
	for _, t := range tools {
		if _, err := os.Stat(t); err != nil {
			missing = append(missing, t)
		}
	}
	return missing
}

// Setup prepares a run of the harness from TestMain: when enabled and root,
// it installs missing tools with scripts/install-test-deps.sh, removes
// namespaces left by a killed earlier run and installs a SIGINT/SIGTERM
// handler that cleans up every live scenario before exiting. It returns a
// function that prints the summary table.
func Setup() (teardown func()) {
	if os.Getenv(EnvSwitch) == "1" && os.Geteuid() == 0 && len(missingTools()) > 0 {
		installDeps()
	}
	if reason, _ := gateReason(); reason != "" {
		fmt.Println(reason)
		return func() {}
	}
	for _, n := range removeStaleNetns() {
		fmt.Printf("interop: removed stale namespace %s\n", n)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "\ninterop: %v: cleaning up\n", sig)
		cleanupAll(fmt.Sprintf("interrupted by %v", sig))
		fmt.Fprint(os.Stderr, summaryTable())
		os.Exit(130)
	}()
	return func() {
		signal.Stop(sigs)
		if t := summaryTable(); t != "" {
			fmt.Printf("\ninterop summary:\n%s", t)
		}
	}
}

// installDeps runs scripts/install-test-deps.sh from the module root.
func installDeps() {
	script, err := filepath.Abs("../../scripts/install-test-deps.sh")
	if err == nil {
		_, err = os.Stat(script)
	}
	if err != nil {
		fmt.Printf("interop: cannot find scripts/install-test-deps.sh: %v\n", err)
		return
	}
	fmt.Println("interop: installing missing test dependencies")
	cmd := exec.Command(script)
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Printf("interop: %s: %v\n", script, err)
	}
}
