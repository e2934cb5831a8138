output "public_ip" {
  description = "Public address of the stack host."
  value       = aws_instance.stack.public_ip
}

output "grafana_url" {
  description = "Grafana (user admin, password in deploy/secrets/grafana_admin_password on the host)."
  value       = "http://${aws_instance.stack.public_ip}:3000"
}

output "herald_url" {
  description = "Herald's UI and API (TLS with the stack's own CA; user admin, password in deploy/secrets/herald_admin_password)."
  value       = "https://${aws_instance.stack.public_ip}:9093"
}

output "prometheus_url" {
  description = "Prometheus listens on the host's loopback only: open the SSH tunnel below, then this URL."
  value       = "http://localhost:9090"
}

output "ssh_command" {
  description = "SSH to the host."
  value       = "ssh -i ~/.ssh/${var.key_name}.pem ubuntu@${aws_instance.stack.public_ip}"
}

output "prometheus_tunnel_command" {
  description = "SSH tunnel to reach Prometheus on http://localhost:9090."
  value       = "ssh -i ~/.ssh/${var.key_name}.pem -N -L 9090:127.0.0.1:9090 ubuntu@${aws_instance.stack.public_ip}"
}
