// Command gdexport exports GuardDuty findings from NATS JetStream the way
// GuardDuty's "Exporting findings" feature does: see README.md.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
