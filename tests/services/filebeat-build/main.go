// Command filebeat is Elastic Filebeat, built from the github.com/elastic/beats/v7 Go module for
// logml's integration tests (tests/services/svc/filebeat builds it; nothing here is shipped).
// It is the same program as beats' own filebeat/main.go: the stock inputs (filestream, log, ...)
// and the stock outputs (kafka, elasticsearch, logstash, file, console).
package main

import (
	"os"

	"github.com/elastic/beats/v7/filebeat/cmd"
	inputs "github.com/elastic/beats/v7/filebeat/input/default-inputs"
)

func main() {
	if err := cmd.Filebeat(inputs.Init, cmd.FilebeatSettings()).Execute(); err != nil {
		os.Exit(1)
	}
}
