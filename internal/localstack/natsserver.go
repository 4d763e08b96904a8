package localstack

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
)

// natsServerModule is the module of the NATS server tapproof embeds; the
// external server the tests start is the same release, from go.mod.
const natsServerModule = "github.com/nats-io/nats-server/v2"

// NATSServerBinary returns a cached nats-server binary of the version
// go.mod requires, building it (well under a minute, once) into
// cacheDir/bin/nats-server-VERSION if missing; cacheDir "" is
// $TAPPROOF_CACHE or os.UserCacheDir()/tapproof. Tests use it to run the
// broker as an external server, the way a production cluster runs it.
func NATSServerBinary(ctx context.Context, cacheDir string, log io.Writer) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	cmd := goCommand(ctx, "list", "-m", "-f", "{{.Version}}", natsServerModule)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("nats-server module: %w", err)
	}
	return cachedBinary(ctx, cacheDir, log, "nats-server", strings.TrimSpace(string(out)), "under a minute", func(tmp string) *exec.Cmd {
		cmd := goCommand(ctx, "build", "-o", filepath.Join(tmp, "nats-server"), natsServerModule)
		cmd.Dir = root // the version comes from our go.mod
		return cmd
	})
}
