package xyz.sigilvault.sunstorm.sample.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import xyz.sigilvault.sunstorm.sample.state.PairsController
import xyz.sigilvault.sunstorm.sample.state.SignController
import xyz.sigilvault.sunstorm.sample.state.SignRequestView

/** Pending sign requests: the decoded view, warnings and guardrail violations. */
@Composable
fun SignRequestsScreen(c: SignController) {
    LaunchedEffect(Unit) { c.refresh() }
    val s by c.state.collectAsStateWithLifecycle()
    Column(Modifier.fillMaxSize().padding(16.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
        Text("Sign requests", style = MaterialTheme.typography.headlineSmall)
        s.message?.let { Text(it) }
        s.status?.let { Text(it, style = MaterialTheme.typography.titleMedium) }
        if (!s.loading && s.requests.isEmpty()) Text("Nothing waiting.")
        LazyColumn(verticalArrangement = Arrangement.spacedBy(8.dp)) {
            items(s.requests, key = { it.requestId }) { r ->
                SignRequestCard(r, busy = s.busyRequestId != null, onApprove = { c.approve(r.requestId) }, onReject = { c.reject(r.requestId) })
            }
        }
    }
}

@Composable
private fun SignRequestCard(r: SignRequestView, busy: Boolean, onApprove: () -> Unit, onReject: () -> Unit) {
    Card(Modifier.fillMaxWidth()) {
        Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(4.dp)) {
            Text(r.title, style = MaterialTheme.typography.titleLarge)
            Text("${r.spName} · ${r.chain}", style = MaterialTheme.typography.bodySmall)
            Text("From ${r.account}", style = MaterialTheme.typography.bodySmall)
            // The title is the intent ("swap", "Send"); each row keeps its stable key (what a
            // translated app would look its own label up by), shown small under the label.
            r.fields.forEach { f ->
                Row(Modifier.fillMaxWidth(), horizontalArrangement = Arrangement.SpaceBetween) {
                    Column {
                        Text(f.label)
                        if (f.key.isNotEmpty()) Text(f.key, style = MaterialTheme.typography.labelSmall)
                    }
                    Text(f.value)
                }
            }
            if (r.blind) Text("Parts of this request could not be decoded: you would sign blind.", color = MaterialTheme.colorScheme.error)
            r.warnings.forEach { Text("⚠ ${it.text}", color = MaterialTheme.colorScheme.error) }
            r.violations.forEach { Text("⛔ ${it.message}", color = MaterialTheme.colorScheme.error) }
            // The appliance shows the same fingerprint beside its own screen before it signs.
            if (r.displayFingerprint.isNotEmpty()) {
                Text("Screen ${r.displayFingerprint}: the appliance shows the same", style = MaterialTheme.typography.labelSmall)
            }
            Row(horizontalArrangement = Arrangement.spacedBy(12.dp)) {
                if (r.blocked) {
                    Text("Blocked by your guardrails.")
                } else {
                    Button(onClick = onApprove, enabled = !busy) { Text("Approve") }
                }
                OutlinedButton(onClick = onReject, enabled = !busy) { Text("Reject") }
            }
        }
    }
}

/** Pairs, with revoke (asks first). */
@Composable
fun PairsScreen(c: PairsController) {
    LaunchedEffect(Unit) { c.refresh() }
    val s by c.state.collectAsStateWithLifecycle()
    Column(Modifier.fillMaxSize().padding(16.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
        Text("Pairs", style = MaterialTheme.typography.headlineSmall)
        s.message?.let { Text(it) }
        if (!s.loading && s.pairs.isEmpty()) Text("No pairs yet.")
        LazyColumn(verticalArrangement = Arrangement.spacedBy(8.dp)) {
            items(s.pairs, key = { it.pairId }) { p ->
                Card(Modifier.fillMaxWidth()) {
                    Column(Modifier.padding(16.dp)) {
                        Text(p.spName, style = MaterialTheme.typography.titleMedium)
                        Text(p.spUserRef, style = MaterialTheme.typography.bodySmall)
                        p.bindings.forEach { Text(it, style = MaterialTheme.typography.bodySmall) }
                        if (p.active) {
                            OutlinedButton(onClick = { c.askRevoke(p.pairId) }) { Text("Revoke") }
                        } else {
                            Text("Revoked", color = MaterialTheme.colorScheme.error)
                        }
                    }
                }
            }
        }
    }
    val confirm = s.confirmRevoke
    if (confirm != null) {
        val name = s.pairs.firstOrNull { it.pairId == confirm }?.spName ?: "this service"
        AlertDialog(
            onDismissRequest = c::dismissRevoke,
            title = { Text("Revoke $name?") },
            text = { Text("Your appliance signs the revocation; $name can no longer request signatures.") },
            confirmButton = { TextButton(onClick = c::confirmRevoke) { Text("Revoke") } },
            dismissButton = { TextButton(onClick = c::dismissRevoke) { Text("Cancel") } },
        )
    }
}
