package generator

// resourceKind is what a finding is about.
type resourceKind int

const (
	resInstance resourceKind = iota
	resAccessKey
	resS3
	resEKS
	resECS
	resLambda
	resRDS
	resMalwareEC2
)

// actionKind is service.action's shape.
type actionKind int

const (
	actNone actionKind = iota
	actNetwork
	actPortProbe
	actDNS
	actAPI
	actK8s
	actRDSLogin
)

// findingType is one GuardDuty finding type and the shape of its findings.
// Titles and descriptions name the resource with {placeholders} that render
// fills in.
type findingType struct {
	name        string
	severity    float64
	resource    resourceKind
	action      actionKind
	direction   string // networkConnectionAction.connectionDirection
	port        int    // the port the action is about
	runtime     bool   // service.runtimeDetails (Runtime Monitoring)
	threatIntel bool   // service.evidence from a threat list
	feature     string // service.featureName
	role        string // service.resourceRole
	title       string
	description string
}

// catalog is every type Generate picks from, uniformly.
var catalog = []findingType{
	// EC2, from VPC flow logs and DNS logs.
	{name: "Recon:EC2/Portscan", severity: 5, resource: resInstance, action: actNetwork, direction: "OUTBOUND", port: 22, feature: "FlowLogs", role: "ACTOR",
		title: "Unusual outbound communication seen from EC2 instance {instance} on server port {port}.", description: "EC2 instance {instance} is performing outbound port scans against remote host {ip}."},
	{name: "Recon:EC2/PortProbeUnprotectedPort", severity: 2, resource: resInstance, action: actPortProbe, port: 3389, feature: "FlowLogs", role: "TARGET", threatIntel: true,
		title: "Unprotected port on EC2 instance {instance} is being probed.", description: "EC2 instance has an unprotected port {port} which is being probed by a known malicious host."},
	{name: "UnauthorizedAccess:EC2/SSHBruteForce", severity: 2, resource: resInstance, action: actNetwork, direction: "INBOUND", port: 22, feature: "FlowLogs", role: "TARGET",
		title: "{ip} is performing SSH brute force attacks against {instance}.", description: "{ip} is performing SSH brute force attacks against {instance}. Brute force attacks are used to gain unauthorized access to your instance by guessing the SSH password."},
	{name: "UnauthorizedAccess:EC2/RDPBruteForce", severity: 5, resource: resInstance, action: actNetwork, direction: "INBOUND", port: 3389, feature: "FlowLogs", role: "TARGET",
		title: "{ip} is performing RDP brute force attacks against {instance}.", description: "{ip} is performing RDP brute force attacks against {instance}. Brute force attacks are used to gain unauthorized access to your instance by guessing the RDP password."},
	{name: "UnauthorizedAccess:EC2/TorClient", severity: 8, resource: resInstance, action: actNetwork, direction: "OUTBOUND", port: 9001, feature: "FlowLogs", role: "ACTOR", threatIntel: true,
		title: "EC2 instance {instance} is communicating with Tor Entry/Guard Node.", description: "EC2 instance {instance} is communicating with IP address {ip} on the Tor Anonymizing Proxy network marked as an Entry/Guard Node."},
	{name: "Backdoor:EC2/DenialOfService.Tcp", severity: 8, resource: resInstance, action: actNetwork, direction: "OUTBOUND", port: 80, feature: "FlowLogs", role: "ACTOR",
		title: "EC2 instance {instance} is behaving in a manner that may indicate it is being used to perform a Denial of Service (DoS) attack using TCP protocol.", description: "EC2 instance {instance} is behaving in a manner that may indicate it is being used to perform a Denial of Service (DoS) attack against remote host {ip} using TCP protocol."},
	{name: "Backdoor:EC2/C&CActivity.B!DNS", severity: 8, resource: resInstance, action: actDNS, feature: "DnsLogs", role: "ACTOR", threatIntel: true,
		title: "Command and Control server domain name queried by EC2 instance {instance}.", description: "EC2 instance {instance} is querying a domain name {domain} that is associated with a known Command & Control server."},
	{name: "CryptoCurrency:EC2/BitcoinTool.B!DNS", severity: 8, resource: resInstance, action: actDNS, feature: "DnsLogs", role: "ACTOR", threatIntel: true,
		title: "Bitcoin-related domain name queried by EC2 instance {instance}.", description: "EC2 instance {instance} is querying a domain name {domain} that is associated with Bitcoin-related activity."},
	{name: "Trojan:EC2/BlackholeTraffic!DNS", severity: 8, resource: resInstance, action: actDNS, feature: "DnsLogs", role: "ACTOR", threatIntel: true,
		title: "EC2 instance {instance} is querying a domain name that is being redirected to a black hole IP address.", description: "EC2 instance {instance} is querying a domain name {domain} of a remote host that is a known black hole."},
	{name: "Trojan:EC2/DGADomainRequest.B", severity: 8, resource: resInstance, action: actDNS, feature: "DnsLogs", role: "ACTOR",
		title: "DGA domain name queried by EC2 instance {instance}.", description: "EC2 instance {instance} is querying algorithmically generated domains such as {domain}. Such domains are commonly used by malware and could be an indication of a compromised EC2 instance."},
	// IAM access keys, from CloudTrail management events.
	{name: "Recon:IAMUser/MaliciousIPCaller", severity: 5, resource: resAccessKey, action: actAPI, feature: "CloudTrail", role: "TARGET", threatIntel: true,
		title: "Reconnaissance API {api} was invoked from a known malicious IP address.", description: "API {api} was invoked from IP address {ip} which is on a threat list. Attackers with stolen credentials often run this type of reconnaissance."},
	{name: "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", severity: 8, resource: resAccessKey, action: actAPI, feature: "CloudTrail", role: "TARGET",
		title: "Credentials for the EC2 instance role {user} used from a remote AWS account.", description: "Credentials that were created exclusively for an EC2 instance using instance role {user} have been used from IP address {ip}, outside of AWS."},
	{name: "Policy:IAMUser/RootCredentialUsage", severity: 2, resource: resAccessKey, action: actAPI, feature: "CloudTrail", role: "TARGET",
		title: "API {api} was invoked using root credentials.", description: "API {api} was invoked using root credentials from IP address {ip}."},
	{name: "Discovery:IAMUser/AnomalousBehavior", severity: 5, resource: resAccessKey, action: actAPI, feature: "CloudTrail", role: "TARGET",
		title: "The API {api} was used to gain information about resources in your account.", description: "APIs commonly used in Discovery tactics were invoked by user {user} under unusual circumstances. Such activity is not typically seen from this user."},
	{name: "Stealth:IAMUser/CloudTrailLoggingDisabled", severity: 2, resource: resAccessKey, action: actAPI, feature: "CloudTrail", role: "TARGET",
		title: "AWS CloudTrail trail was disabled.", description: "The CloudTrail trail was disabled by {user} calling {api} from {ip}."},
	{name: "PenTest:IAMUser/KaliLinux", severity: 5, resource: resAccessKey, action: actAPI, feature: "CloudTrail", role: "TARGET",
		title: "API {api} was invoked from a Kali Linux computer.", description: "API {api} was invoked by {user} from a Kali Linux computer at IP address {ip}."},
	// S3, from data events.
	{name: "Policy:S3/BucketBlockPublicAccessDisabled", severity: 2, resource: resS3, action: actAPI, feature: "S3DataEvents", role: "TARGET",
		title: "Amazon S3 Block Public Access was disabled for S3 bucket {bucket}.", description: "Amazon S3 Block Public Access was disabled for S3 bucket {bucket} by {user} calling {api}. If this behavior is not expected, it may indicate a configuration mistake or that your credentials are compromised."},
	{name: "Exfiltration:S3/AnomalousBehavior", severity: 8, resource: resS3, action: actAPI, feature: "S3DataEvents", role: "TARGET",
		title: "An IAM entity invoked an S3 API in a suspicious way.", description: "An IAM entity {user} invoked API {api} on bucket {bucket} in a way that is anomalous: it read an unusual volume of objects from IP address {ip}."},
	{name: "Discovery:S3/MaliciousIPCaller", severity: 5, resource: resS3, action: actAPI, feature: "S3DataEvents", role: "TARGET", threatIntel: true,
		title: "S3 API {api} was invoked from a known malicious IP address.", description: "An S3 API {api} commonly used to discover resources was invoked on bucket {bucket} from IP address {ip} which is on a threat list."},
	// EKS, from Kubernetes audit logs.
	{name: "Discovery:Kubernetes/SuccessfulAnonymousAccess", severity: 5, resource: resEKS, action: actK8s, feature: "KubernetesAuditLogs", role: "TARGET",
		title: "The Kubernetes API {api} was successfully invoked by an unauthenticated user.", description: "The Kubernetes API {api} commonly used in Discovery tactics was invoked on cluster {cluster} by an unauthenticated user from IP address {ip}."},
	{name: "Discovery:Kubernetes/TorIPCaller", severity: 5, resource: resEKS, action: actK8s, feature: "KubernetesAuditLogs", role: "TARGET", threatIntel: true,
		title: "A Kubernetes API commonly used in Discovery tactics was invoked from a Tor exit node IP address.", description: "A Kubernetes API {api} was invoked on EKS cluster {cluster} from Tor exit node IP address {ip}."},
	{name: "PrivilegeEscalation:Kubernetes/PrivilegedContainer", severity: 5, resource: resEKS, action: actK8s, feature: "KubernetesAuditLogs", role: "TARGET",
		title: "Privileged container with root level access launched on EKS cluster {cluster}.", description: "A privileged container with root level access was launched on EKS cluster {cluster}. If this behavior is not expected, it may indicate that your credentials are compromised."},
	{name: "Execution:Kubernetes/ExecInKubeSystemPod", severity: 5, resource: resEKS, action: actK8s, feature: "KubernetesAuditLogs", role: "TARGET",
		title: "A command was executed inside a pod in the kube-system namespace on EKS cluster {cluster}.", description: "A command was executed inside a pod in the kube-system namespace on EKS cluster {cluster} by {user}."},
	// Runtime Monitoring on EC2, EKS and ECS.
	{name: "Execution:Runtime/NewBinaryExecuted", severity: 5, resource: resECS, runtime: true, feature: "RuntimeMonitoring", role: "ACTOR",
		title: "A newly created or recently modified binary file was executed in ECS task {cluster}.", description: "A newly created or recently modified binary file {process} has been executed in a container of ECS cluster {cluster}."},
	{name: "CryptoCurrency:Runtime/BitcoinTool.B!DNS", severity: 8, resource: resInstance, action: actDNS, runtime: true, feature: "RuntimeMonitoring", role: "ACTOR", threatIntel: true,
		title: "Bitcoin-related domain name queried by process {process} on EC2 instance {instance}.", description: "Process {process} on EC2 instance {instance} is querying a domain name {domain} that is associated with Bitcoin-related activity."},
	{name: "PrivilegeEscalation:Runtime/DockerSocketAccessed", severity: 5, resource: resEKS, runtime: true, feature: "RuntimeMonitoring", role: "ACTOR",
		title: "A process inside a container of EKS cluster {cluster} is communicating with the Docker socket.", description: "Process {process} inside a container of EKS cluster {cluster} is communicating with the Docker daemon through its Unix socket."},
	{name: "DefenseEvasion:Runtime/ProcessInjection.Proc", severity: 8, resource: resInstance, runtime: true, feature: "RuntimeMonitoring", role: "ACTOR",
		title: "Process injection through proc filesystem detected on EC2 instance {instance}.", description: "Process {process} injected code into another process through the proc filesystem on EC2 instance {instance}."},
	// Lambda network activity.
	{name: "Backdoor:Lambda/C&CActivity.B", severity: 8, resource: resLambda, action: actNetwork, direction: "OUTBOUND", port: 443, feature: "LambdaNetworkLogs", role: "ACTOR", threatIntel: true,
		title: "Lambda function {function} is querying an IP address associated with a known Command & Control server.", description: "Lambda function {function} is querying IP address {ip} that is associated with a known Command & Control server."},
	{name: "CryptoCurrency:Lambda/BitcoinTool.B", severity: 8, resource: resLambda, action: actNetwork, direction: "OUTBOUND", port: 3333, feature: "LambdaNetworkLogs", role: "ACTOR", threatIntel: true,
		title: "Lambda function {function} is communicating with a Bitcoin-related IP address.", description: "Lambda function {function} is communicating with IP address {ip} that is associated with Bitcoin-related activity."},
	// RDS login activity.
	{name: "CredentialAccess:RDS/AnomalousBehavior.SuccessfulLogin", severity: 8, resource: resRDS, action: actRDSLogin, feature: "RdsLoginEvents", role: "TARGET",
		title: "A user logged in to database {db} in an anomalous way.", description: "User {user} logged in to database {db} from IP address {ip} in a way that is anomalous for this database."},
	{name: "CredentialAccess:RDS/MaliciousIPCaller.FailedLoginAttempt", severity: 5, resource: resRDS, action: actRDSLogin, feature: "RdsLoginEvents", role: "TARGET", threatIntel: true,
		title: "Failed login attempts to database {db} from a known malicious IP address.", description: "IP address {ip}, which is on a threat list, made failed login attempts to database {db}."},
	// Malware Protection scans of EBS volumes.
	{name: "Execution:EC2/MaliciousFile", severity: 8, resource: resMalwareEC2, feature: "EbsMalwareProtection", role: "TARGET",
		title: "Malicious file detected on EC2 instance {instance}.", description: "{threat} has been detected in a file on EC2 instance {instance}."},
	{name: "Execution:EC2/SuspiciousFile", severity: 5, resource: resMalwareEC2, feature: "EbsMalwareProtection", role: "TARGET",
		title: "Suspicious file detected on EC2 instance {instance}.", description: "A suspicious file ({threat}) has been detected on EC2 instance {instance}."},
}
