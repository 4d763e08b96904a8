package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tapproof/tapproof/httpapi"
)

func newHouseholdCodeCmd() *cobra.Command {
	var server, utility, lab, sample string
	cmd := &cobra.Command{
		Use:   "household-code",
		Short: "Print the code a household subscribes to its own lab result with (needs TAPPROOF_ADMIN_TOKEN)",
		Long: `Print the household code of one compliance sample: give it, with the sample
(lab/sample id), to the household whose tap it was drawn from. On the public
subscribe form, under "I have a lab result code", the household enters both
and receives that sample's result, which is sent to nobody else and shown on
no public page. The code is derived from the utility, the lab and the sample
id under the server's key ($TAPPROOF_DATA/household-code.key), so it can be
issued before the lab reports and is the same every time it is asked for.
It is the household's secret: the server does not log it; do not log it
either.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			token := os.Getenv("TAPPROOF_ADMIN_TOKEN")
			if token == "" {
				return errors.New("TAPPROOF_ADMIN_TOKEN is not set")
			}
			c := &httpapi.Client{BaseURL: server, Token: token}
			hc, err := c.HouseholdCode(cmd.Context(), utility, lab, sample)
			if err != nil {
				return fmt.Errorf("household code of %s/%s: %w", lab, sample, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sample: %s\ncode:   %s\n", hc.Sample, hc.Code)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "http://127.0.0.1:8480", "tapproof HTTP API ($TAPPROOF_SERVER)")
	f.StringVar(&utility, "utility", "", "utility (water system) id (required)")
	f.StringVar(&lab, "lab", "", "the certified lab's id (required)")
	f.StringVar(&sample, "sample", "", "the lab's sample id, as it signs it (required)")
	for _, n := range []string{"utility", "lab", "sample"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}
