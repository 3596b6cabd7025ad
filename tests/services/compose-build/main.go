// Command docker-compose is the Docker Compose v2 CLI plugin, built from the
// github.com/docker/compose/v2 Go module for logml's tests (tests/services/svc/compose builds it
// and installs it as $DOCKER_CONFIG/cli-plugins/docker-compose; nothing here is shipped).
// It is compose's own cmd/main.go (Apache-2.0, Copyright 2020 Docker Compose CLI authors), except
// that the version comes from the `version` variable below (compose's internal package cannot be
// imported from another module; svc/compose sets both with -ldflags -X).
package main

import (
	"os"

	dockercli "github.com/docker/cli/cli"
	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/docker/compose/v2/cmd/cmdtrace"
	"github.com/docker/compose/v2/cmd/compatibility"
	commands "github.com/docker/compose/v2/cmd/compose"
	"github.com/docker/compose/v2/cmd/prompt"
	"github.com/docker/compose/v2/pkg/compose"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
)

// version is set at link time: -X main.version=v2.x.y (and github.com/docker/compose/v2/internal.Version)
var version = "dev"

func pluginMain() {
	plugin.Run(
		func(cli command.Cli) *cobra.Command {
			backend := compose.NewComposeService(cli,
				compose.WithPrompt(prompt.NewPrompt(cli.In(), cli.Out()).Confirm),
			)
			cmd := commands.RootCommand(cli, backend)
			originalPreRunE := cmd.PersistentPreRunE
			cmd.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
				// initialize the cli instance
				if err := plugin.PersistentPreRunE(cmd, args); err != nil {
					return err
				}
				if err := cmdtrace.Setup(cmd, cli, os.Args[1:]); err != nil {
					logrus.Debugf("failed to enable tracing: %v", err)
				}
				if originalPreRunE != nil {
					return originalPreRunE(cmd, args)
				}
				return nil
			}
			cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
				return dockercli.StatusError{StatusCode: 1, Status: err.Error()}
			})
			return cmd
		},
		metadata.Metadata{
			SchemaVersion: "0.1.0",
			Vendor:        "Docker Inc.",
			Version:       version,
		},
		command.WithUserAgent("compose/"+version),
	)
}

func main() {
	if plugin.RunningStandalone() {
		os.Args = append([]string{"docker"}, compatibility.Convert(os.Args[1:])...)
	}
	pluginMain()
}
