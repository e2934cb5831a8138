# One EC2 host running the monitoring stack of deploy/docker-compose.yml
# (Herald, Prometheus, Node Exporter, Grafana). Nothing is reachable from
# the internet unless allowed_cidrs says so.

data "aws_ami" "ubuntu" {
  most_recent = true
  owners      = ["099720109477"] # Canonical

  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"]
  }
  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

# --- network: the default VPC, or a dedicated one ---------------------------

data "aws_vpc" "default" {
  count   = var.create_vpc ? 0 : 1
  default = true
}

data "aws_subnets" "default" {
  count = var.create_vpc ? 0 : 1
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default[0].id]
  }
  filter {
    name   = "default-for-az"
    values = ["true"]
  }
}

resource "aws_vpc" "this" {
  count                = var.create_vpc ? 1 : 0
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name }
  #checkov:skip=CKV2_AWS_11:VPC flow logs cost money and need a log destination; enable them for production accounts.
}

# A VPC's default security group denies everything: nothing should use it.
resource "aws_default_security_group" "this" {
  count  = var.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id
}

resource "aws_internet_gateway" "this" {
  count  = var.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id
  tags   = { Name = var.name }
}

resource "aws_subnet" "public" {
  count                   = var.create_vpc ? 1 : 0
  vpc_id                  = aws_vpc.this[0].id
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, 1)
  map_public_ip_on_launch = true
  tags                    = { Name = "${var.name}-public" }
  #checkov:skip=CKV_AWS_130:The single host must be reachable (SSH, Grafana, Herald); the security group limits who may connect.
}

resource "aws_route_table" "public" {
  count  = var.create_vpc ? 1 : 0
  vpc_id = aws_vpc.this[0].id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this[0].id
  }
  tags = { Name = "${var.name}-public" }
}

resource "aws_route_table_association" "public" {
  count          = var.create_vpc ? 1 : 0
  subnet_id      = aws_subnet.public[0].id
  route_table_id = aws_route_table.public[0].id
}

locals {
  vpc_id    = var.create_vpc ? aws_vpc.this[0].id : data.aws_vpc.default[0].id
  subnet_id = var.create_vpc ? aws_subnet.public[0].id : sort(data.aws_subnets.default[0].ids)[0]
  # Ports people reach: SSH, Grafana, Herald (TLS + password).
  ingress_ports = {
    ssh     = 22
    grafana = 3000
    herald  = 9093
  }
}

resource "aws_security_group" "stack" {
  name        = "${var.name}-host"
  description = "Herald stack host: SSH, Grafana and Herald from allowed_cidrs only"
  vpc_id      = local.vpc_id
  tags        = { Name = "${var.name}-host" }
}

resource "aws_vpc_security_group_ingress_rule" "allowed" {
  for_each = {
    for pair in setproduct(keys(local.ingress_ports), var.allowed_cidrs) :
    "${pair[0]}-${pair[1]}" => { port = local.ingress_ports[pair[0]], cidr = pair[1], what = pair[0] }
  }
  security_group_id = aws_security_group.stack.id
  description       = "${each.value.what} from ${each.value.cidr}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.stack.id
  description       = "Outbound: packages, images, SMTP and Slack"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
  #checkov:skip=CKV_AWS_382:The host installs packages, pulls images and delivers to any SMTP server and Slack; destinations are not known in advance.
}

# --- the host ------------------------------------------------------------------

resource "aws_instance" "stack" {
  ami                    = data.aws_ami.ubuntu.id
  instance_type          = var.instance_type
  key_name               = var.key_name
  subnet_id              = local.subnet_id
  vpc_security_group_ids = [aws_security_group.stack.id]
  monitoring             = true
  ebs_optimized          = true
  user_data = templatefile("${path.module}/cloud-init.sh.tftpl", {
    repo_url = var.repo_url
    repo_ref = var.repo_ref
  })
  user_data_replace_on_change = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
  }

  root_block_device {
    encrypted             = true
    volume_type           = "gp3"
    volume_size           = var.root_volume_size
    delete_on_termination = true
  }

  tags = { Name = var.name }

  #checkov:skip=CKV2_AWS_41:The stack calls no AWS API, so the host gets no IAM role (least privilege).
  #checkov:skip=CKV_AWS_88:The host needs a public address for its users; the security group admits allowed_cidrs only.
}
