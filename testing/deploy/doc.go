// Package deploy checks the deployment files of deployments/ without a
// cluster or Docker (plain go test): every Kubernetes manifest under
// deployments/k8s is well-formed YAML with the fields Kubernetes requires
// and refers only to objects that exist (ConfigMap, Secret, ServiceAccount,
// volumes, ports), the PodDisruptionBudget and the Service select the
// worker pods, the Deployment has probes and resource limits; the workers'
// configuration files (the ConfigMap's and compose/gdexport.yaml) pass
// gdexport's own validation; docker-compose.yml has the cluster it
// promises with every port on 127.0.0.1. The container tests
// (testing/cluster) run the image, the NATS configuration and the
// workers for real.
package deploy
