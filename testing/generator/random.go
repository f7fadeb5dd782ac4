package generator

import (
	"math/rand/v2"
	"strconv"
	"strings"
)

// rnd wraps the per-finding random source with helpers for AWS-looking
// values.
type rnd struct{ *rand.Rand }

const hexDigits = "0123456789abcdef"

func (r rnd) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = hexDigits[r.IntN(16)]
	}
	return string(b)
}

func (r rnd) upperAlnum(n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

func (r rnd) lower(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	return string(b)
}

func (r rnd) pick(list []string) string { return list[r.IntN(len(list))] }

// between returns a number in [lo, hi].
func (r rnd) between(lo, hi int) int { return lo + r.IntN(hi-lo+1) }

func (r rnd) chance(p float64) bool { return r.Float64() < p }

func (r rnd) uuid() string {
	h := r.hex(32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-" + h[16:20] + "-" + h[20:]
}

// publicIP is a random address outside the private and reserved ranges.
func (r rnd) publicIP() string {
	for {
		a := r.between(3, 223)
		if a == 10 || a == 127 || a == 100 || a == 169 || a == 172 || a == 192 {
			continue
		}
		return ip(a, r.IntN(256), r.IntN(256), r.between(1, 254))
	}
}

func (r rnd) privateIP() string {
	switch r.IntN(3) {
	case 0:
		return ip(10, r.IntN(256), r.IntN(256), r.between(4, 254))
	case 1:
		return ip(172, r.between(16, 31), r.IntN(256), r.between(4, 254))
	default:
		return ip(192, 168, r.IntN(256), r.between(4, 254))
	}
}

func (r rnd) ipv6() string {
	return "2600:1f18:" + r.hex(4) + ":" + r.hex(4) + ":" + r.hex(4) + ":" + r.hex(4) + ":" + r.hex(4) + ":" + r.hex(4)
}

func ip(a, b, c, d int) string {
	return strconv.Itoa(a) + "." + strconv.Itoa(b) + "." + strconv.Itoa(c) + "." + strconv.Itoa(d)
}

func privateDNS(addr, region string) string {
	if region == "us-east-1" {
		return "ip-" + strings.ReplaceAll(addr, ".", "-") + ".ec2.internal"
	}
	return "ip-" + strings.ReplaceAll(addr, ".", "-") + "." + region + ".compute.internal"
}

func publicDNS(addr, region string) string {
	if region == "us-east-1" {
		return "ec2-" + strings.ReplaceAll(addr, ".", "-") + ".compute-1.amazonaws.com"
	}
	return "ec2-" + strings.ReplaceAll(addr, ".", "-") + "." + region + ".compute.amazonaws.com"
}

// domain is a plausible (or algorithmically generated) domain name.
func (r rnd) domain(dga bool) string {
	if dga {
		return r.lower(r.between(10, 22)) + "." + r.pick([]string{"com", "net", "biz", "info", "ru", "top", "xyz"})
	}
	return r.pick([]string{"pool", "mine", "xmr", "stratum", "update", "cdn", "api", "sync"}) + "." +
		r.lower(r.between(5, 10)) + "." + r.pick([]string{"com", "net", "org", "io", "cc", "su"})
}

// place is where a remote address is, as GuardDuty's geolocation says.
type place struct {
	country, code, city string
	lat, lon            float64
	asn                 int
	asnOrg, isp         string
}

var places = []place{
	{"United States", "US", "Ashburn", 39.0469, -77.4903, 14618, "AMAZON-AES", "Amazon.com"},
	{"United States", "US", "San Jose", 37.3394, -121.895, 13335, "CLOUDFLARENET", "Cloudflare"},
	{"Germany", "DE", "Frankfurt am Main", 50.1188, 8.6843, 24940, "Hetzner Online GmbH", "Hetzner Online GmbH"},
	{"Netherlands", "NL", "Amsterdam", 52.3759, 4.8975, 60781, "LeaseWeb Netherlands B.V.", "LeaseWeb"},
	{"Russia", "RU", "Moscow", 55.7527, 37.6172, 12389, "PJSC Rostelecom", "Rostelecom"},
	{"China", "CN", "Beijing", 39.9288, 116.3889, 4808, "China Unicom Beijing Province Network", "China Unicom"},
	{"Brazil", "BR", "São Paulo", -23.5335, -46.6359, 28573, "Claro NXT Telecomunicacoes Ltda", "Claro S.A."},
	{"South Korea", "KR", "Dobong-gu", 37.6474, 127.0245, 9318, "SK Broadband Co Ltd", "SK Broadband"},
	{"France", "FR", "Roubaix", 50.6942, 3.1746, 16276, "OVH SAS", "OVH SAS"},
	{"Singapore", "SG", "Singapore", 1.2929, 103.8547, 14061, "DIGITALOCEAN-ASN", "DigitalOcean"},
	{"India", "IN", "Mumbai", 19.0748, 72.8856, 9829, "National Internet Backbone", "BSNL"},
	{"Romania", "RO", "Bucharest", 44.4354, 26.1033, 9009, "M247 Europe SRL", "M247 Ltd"},
	{"Iran", "IR", "Tehran", 35.6944, 51.4215, 58224, "Iran Telecommunication Company PJS", "TCI"},
	{"Ukraine", "UA", "Kyiv", 50.4522, 30.5287, 15895, "Kyivstar PJSC", "Kyivstar"},
	{"Vietnam", "VN", "Hanoi", 21.0245, 105.8412, 45899, "VNPT Corp", "VNPT"},
}

var (
	userNames   = []string{"alice", "bob", "carol", "deploy-bot", "ci-runner", "terraform", "jenkins", "admin", "svc-backup", "data-eng", "mallory", "ops-oncall"}
	roleNames   = []string{"EC2InstanceRole", "AppServerRole", "LambdaExecRole", "OrganizationAccountAccessRole", "AWSReservedSSO_AdministratorAccess_" + "8d3f0c", "eks-node-role", "GitHubActionsDeploy"}
	apiCalls    = []struct{ api, service string }{{"ListBuckets", "s3.amazonaws.com"}, {"GetObject", "s3.amazonaws.com"}, {"DescribeInstances", "ec2.amazonaws.com"}, {"ListUsers", "iam.amazonaws.com"}, {"GetCallerIdentity", "sts.amazonaws.com"}, {"ListAccessKeys", "iam.amazonaws.com"}, {"DescribeSecurityGroups", "ec2.amazonaws.com"}, {"StopLogging", "cloudtrail.amazonaws.com"}, {"PutBucketPublicAccessBlock", "s3.amazonaws.com"}, {"ListSecrets", "secretsmanager.amazonaws.com"}, {"DescribeDBInstances", "rds.amazonaws.com"}, {"ListFunctions20150331", "lambda.amazonaws.com"}}
	userAgents  = []string{"aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79 exe/x86_64.amzn.2023", "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.15 lang/python#3.12.2", "aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1", "[Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0]", "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819", "python-requests/2.31.0"}
	instTypes   = []string{"t3.micro", "t3.large", "m5.xlarge", "m6i.2xlarge", "c6g.large", "r5.4xlarge", "g5.xlarge", "t4g.medium"}
	images      = []struct{ id, desc string }{{"ami-0c101f26f147fa7fd", "Amazon Linux 2023 AMI 2023.3.20240312.0 x86_64 HVM kernel-6.1"}, {"ami-080e1f13689e07408", "Canonical, Ubuntu, 22.04 LTS, amd64 jammy image build on 2024-02-07"}, {"ami-0a3c3a20c09d6f377", "Amazon Linux 2 Kernel 5.10 AMI 2.0.20240306.2 x86_64 HVM gp2"}, {"ami-04b70fa74e45c3917", "Microsoft Windows Server 2022 Full Locale English AMI provided by Amazon"}, {"ami-0d7a109bf30624c99", "Amazon ECS-Optimized Amazon Linux 2023 AMI"}}
	tagKeys     = []string{"Name", "Environment", "Owner", "CostCenter", "Team", "Application", "aws:cloudformation:stack-name", "karpenter.sh/nodepool", "Project", "DataClassification", "Backup", "PatchGroup", "kubernetes.io/cluster/prod"}
	tagValues   = []string{"prod", "staging", "dev", "payments", "platform", "web-frontend", "analytics", "true", "confidential", "nightly", "team-blue", "k8s-prod", "batch-worker"}
	processes   = []struct{ name, path string }{{"bash", "/usr/bin/bash"}, {"sh", "/bin/sh"}, {"python3", "/usr/bin/python3.11"}, {"curl", "/usr/bin/curl"}, {"xmrig", "/tmp/.cache/xmrig"}, {"kworkerds", "/var/tmp/kworkerds"}, {"java", "/usr/lib/jvm/java-17-amazon-corretto/bin/java"}, {"node", "/usr/local/bin/node"}, {"systemd", "/usr/lib/systemd/systemd"}, {"containerd-shim", "/usr/bin/containerd-shim-runc-v2"}, {"runc", "/usr/sbin/runc"}, {"nc", "/usr/bin/nc.openbsd"}}
	threatNames = []string{"EICAR-Test-File (not a virus)", "Trojan.Linux.Mirai.B", "Linux.Trojan.Xorddos", "Gen:Variant.Ransom.LockBit.37", "Coinminer.Linux.XMRig.A", "Backdoor.Linux.Tsunami.gen", "Exploit.CVE-2021-44228.Log4Shell"}
	k8sVerbs    = []string{"get", "list", "watch", "create", "delete", "patch"}
	k8sResource = []string{"secrets", "pods", "configmaps", "clusterrolebindings", "serviceaccounts", "nodes"}
	namespaces  = []string{"default", "kube-system", "payments", "monitoring", "ingress-nginx", "argo"}
	dbEngines   = []struct{ engine, version string }{{"aurora-postgresql", "15.4"}, {"aurora-mysql", "8.0.mysql_aurora.3.05.2"}, {"postgres", "16.2"}, {"mysql", "8.0.36"}}
)
