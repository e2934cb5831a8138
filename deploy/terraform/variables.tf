variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-central-1"
}

variable "name" {
  description = "Name prefix of every resource."
  type        = string
  default     = "herald-stack"
}

variable "key_name" {
  description = "Name of an existing EC2 key pair for SSH access."
  type        = string
}

variable "allowed_cidrs" {
  description = "CIDR blocks allowed to reach SSH, Grafana and Herald. Empty (the default) opens nothing: set your own address, e.g. [\"203.0.113.7/32\"]."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.allowed_cidrs : can(cidrnetmask(c))])
    error_message = "Every entry of allowed_cidrs must be an IPv4 CIDR block such as 203.0.113.7/32."
  }
}

variable "create_vpc" {
  description = "Create a dedicated VPC with one public subnet (true) or use the region's default VPC (false)."
  type        = bool
  default     = false
}

variable "vpc_cidr" {
  description = "CIDR of the VPC when create_vpc is true."
  type        = string
  default     = "10.42.0.0/16"
}

variable "instance_type" {
  description = "EC2 instance type. The first start builds Herald from source: 2 vCPUs and 4 GiB make that take about 10 minutes."
  type        = string
  default     = "t3.medium"
}

variable "root_volume_size" {
  description = "Size of the encrypted root volume, in GiB (Docker images, Prometheus data)."
  type        = number
  default     = 30
}

variable "repo_url" {
  description = "Git URL of the Herald repository the host clones (the stack is in its deploy/ folder)."
  type        = string
  default     = "https://github.com/herald-alerting/herald.git"
}

variable "repo_ref" {
  description = "Branch or tag of repo_url to deploy."
  type        = string
  default     = "main"
}
