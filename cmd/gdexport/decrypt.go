package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gdexport/gdexport/stages/compress"
	"github.com/gdexport/gdexport/stages/encrypt"
	"github.com/gdexport/gdexport/stages/encrypt/kms"
)

func decryptCmd(g *globals) *cobra.Command {
	var keyFile, kmsEndpoint, region string
	c := &cobra.Command{
		Use:   "decrypt FILE...",
		Short: "Print exported objects (.jsonl.gz.enc envelope files, or plain .jsonl.gz) as JSON Lines",
		Long: `Print exported objects as JSON Lines on stdout, one finding per line, exactly as exported.

An envelope-encrypted object (.enc) is opened with the key named in its header: the
local master key file (--key-file, default <data-dir>/keys/local-master.key), or an
AWS KMS key, through KMS Decrypt with the standard AWS credential chain (environment,
~/.aws profiles, web identity, instance roles). A KMS key ARN names its Region; a bare
key id (an emulator) takes --region (or AWS_REGION) and --kms-endpoint.
A plain .jsonl.gz object is only decompressed.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("decrypt needs at least one FILE: an exported object (.jsonl.gz.enc or .jsonl.gz)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyFile == "" {
				dir := g.dataDir
				if dir == "" {
					dir = "./data"
				}
				keyFile = filepath.Join(dir, "keys", "local-master.key")
			}
			var local *encrypt.Local
			var kmsKeys *kms.Keys
			resolve := func(provider, keyID string) (encrypt.KeyProvider, error) {
				if provider == kms.ProviderName {
					if kmsKeys == nil {
						var opts []kms.Option
						if kmsEndpoint != "" {
							opts = append(opts, kms.WithEndpoint(kmsEndpoint))
						}
						if region != "" {
							opts = append(opts, kms.WithRegion(region))
						}
						k, err := kms.NewKeys(opts...)
						if err != nil {
							return nil, err
						}
						kmsKeys = k
					}
					return kmsKeys.Provider(cmd.Context(), keyID, region)
				}
				if provider != encrypt.ProviderLocal {
					return nil, fmt.Errorf("object needs key provider %q (key %s), which this gdexport does not know", provider, keyID)
				}
				if local == nil {
					l, err := encrypt.LoadLocal(keyFile)
					if err != nil {
						return nil, err
					}
					local = l
				}
				return local, nil
			}
			// Every file is tried; the first failures are reported, and the
			// exit status says whether all were read.
			failed := 0
			for _, name := range args {
				if err := decryptOne(cmd.Context(), g, name, resolve); err != nil {
					failed++
					fmt.Fprintf(g.stderr, "gdexport: %s: %v\n", name, err)
				}
			}
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d files could not be read", failed, len(args))}
			}
			return nil
		},
	}
	c.Flags().StringVar(&keyFile, "key-file", "", "local master key file (default <data-dir>/keys/local-master.key)")
	c.Flags().StringVar(&kmsEndpoint, "kms-endpoint", "", "KMS endpoint override, such as local-kms's http://127.0.0.1:8080 (objects of provider kms)")
	c.Flags().StringVar(&region, "region", "", "Region of a KMS key given without an ARN (default AWS_REGION or the profile's)")
	return c
}

func decryptOne(ctx context.Context, g *globals, name string, resolve encrypt.Resolver) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	gz := data
	if _, _, _, herr := encrypt.Header(data); herr == nil {
		if gz, err = encrypt.Open(ctx, resolve, data); err != nil {
			return err
		}
	} else if strings.HasSuffix(name, ".enc") {
		return herr
	}
	lines, err := compress.Gunzip(bytes.NewReader(gz))
	if err != nil {
		return err
	}
	_, err = g.stdout.Write(lines)
	return err
}
