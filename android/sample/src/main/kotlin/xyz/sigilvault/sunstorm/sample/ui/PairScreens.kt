package xyz.sigilvault.sunstorm.sample.ui

import androidx.compose.foundation.clickable
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.Checkbox
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import xyz.sigilvault.sunstorm.sample.state.Destination
import xyz.sigilvault.sunstorm.sample.state.PairController
import xyz.sigilvault.sunstorm.sample.state.PairScreen
import xyz.sigilvault.sunstorm.sample.state.SpCard

/** The pair flow for one link: SP card + code, wallets, confirm on appliance, done. */
@Composable
fun PairFlowScreen(controller: PairController, destination: Destination.Pair, openUrl: (String) -> Unit, onClose: () -> Unit) {
    LaunchedEffect(destination) { controller.open(destination.link, destination.sessionId) }
    val state by controller.state.collectAsStateWithLifecycle()
    when (val s = state) {
        PairScreen.Idle, is PairScreen.Loading -> Busy("Checking the pairing request…")
        is PairScreen.EnterCode -> EnterCodeScreen(s, controller)
        is PairScreen.ChooseWallets -> ChooseWalletsScreen(s, controller)
        is PairScreen.ConfirmOnAppliance -> ConfirmOnApplianceScreen(s)
        is PairScreen.Done -> DoneScreen(s, openUrl, onClose = { controller.close(); onClose() })
        is PairScreen.Ended -> MessageScreen("Not paired", s.message, onClose = { controller.close(); onClose() })
    }
}

@Composable
private fun Busy(text: String) {
    Column(Modifier.fillMaxSize().padding(24.dp), horizontalAlignment = Alignment.CenterHorizontally, verticalArrangement = Arrangement.Center) {
        CircularProgressIndicator()
        Text(text, Modifier.padding(top = 16.dp))
    }
}

/** Who asks: name, homepage, key fingerprint, the user's reference, requested chains, expiry. */
@Composable
fun SpCardView(card: SpCard) {
    Card(Modifier.fillMaxWidth()) {
        Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(4.dp)) {
            Text(card.spName, style = MaterialTheme.typography.titleLarge)
            Text(card.homepage, style = MaterialTheme.typography.bodySmall)
            Text("Account: ${card.spUserRef}")
            Text("Asks for wallets on: ${card.requestedChains.joinToString()}")
            Text("Service key ${card.keyFingerprint}", style = MaterialTheme.typography.bodySmall)
            Text("Verified by Sigil. Expires ${java.time.Instant.ofEpochSecond(card.expiresAtEpochSecs)}", style = MaterialTheme.typography.bodySmall)
        }
    }
}

@Composable
private fun EnterCodeScreen(s: PairScreen.EnterCode, c: PairController) {
    Column(Modifier.fillMaxSize().padding(24.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        SpCardView(s.card)
        Text(if (s.prefilled) "The code came with the link. Check it matches the service's page." else "Type the 6-digit code shown on the service's page.")
        OutlinedTextField(
            value = s.code,
            onValueChange = c::editCode,
            label = { Text("Validation code") },
            singleLine = true,
            keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.NumberPassword),
            isError = s.error != null,
            supportingText = { s.error?.let { Text(it) } ?: s.attemptsLeft?.let { Text("$it attempts left") } },
        )
        Row(horizontalArrangement = Arrangement.spacedBy(12.dp)) {
            Button(onClick = c::submitCode, enabled = s.canSubmit) { Text("Continue") }
            OutlinedButton(onClick = c::reject, enabled = !s.busy) { Text("Decline") }
        }
    }
}

@Composable
private fun ChooseWalletsScreen(s: PairScreen.ChooseWallets, c: PairController) {
    Column(Modifier.fillMaxSize().padding(24.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        SpCardView(s.card)
        Text("Choose the wallets ${s.card.spName} may request signatures for:")
        LazyColumn(Modifier.weight(1f)) {
            items(s.rows, key = { it.account }) { row ->
                Row(
                    Modifier.fillMaxWidth().clickable(enabled = row.selectable) { c.toggleWallet(row.account) }.padding(vertical = 8.dp),
                    verticalAlignment = Alignment.CenterVertically,
                ) {
                    Checkbox(checked = row.account in s.selected, onCheckedChange = { c.toggleWallet(row.account) }, enabled = row.selectable)
                    Column {
                        Text("${row.chainName} · ${row.shortAddress}")
                        if (!row.selectable) Text("Not requested by the service", style = MaterialTheme.typography.bodySmall)
                    }
                }
            }
        }
        if (s.chainsWithoutWallet.isNotEmpty()) {
            Text("Your appliance has no wallet on: ${s.chainsWithoutWallet.joinToString()}", style = MaterialTheme.typography.bodySmall)
        }
        s.error?.let { Text(it, color = MaterialTheme.colorScheme.error) }
        Row(horizontalArrangement = Arrangement.spacedBy(12.dp)) {
            Button(onClick = c::approve, enabled = s.canApprove) { Text("Approve on my appliance") }
            OutlinedButton(onClick = c::reject, enabled = !s.busy) { Text("Decline") }
        }
    }
}

@Composable
private fun ConfirmOnApplianceScreen(s: PairScreen.ConfirmOnAppliance) {
    Column(Modifier.fillMaxSize().padding(24.dp), horizontalAlignment = Alignment.CenterHorizontally, verticalArrangement = Arrangement.Center) {
        CircularProgressIndicator()
        Text(s.status, style = MaterialTheme.typography.titleLarge, modifier = Modifier.padding(top = 16.dp))
        Text("Check that your appliance shows ${s.card.spName} and these wallets:", Modifier.padding(top = 8.dp))
        s.bindings.forEach { Text(it, style = MaterialTheme.typography.bodySmall) }
    }
}

@Composable
private fun DoneScreen(s: PairScreen.Done, openUrl: (String) -> Unit, onClose: () -> Unit) {
    Column(Modifier.fillMaxSize().padding(24.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        Text("Paired with ${s.spName}", style = MaterialTheme.typography.headlineSmall)
        s.bindings.forEach { Text(it, style = MaterialTheme.typography.bodySmall) }
        val url = s.returnUrl
        if (url != null) {
            // The core validated it: HTTPS on an origin the service registered.
            Button(onClick = { openUrl(url); onClose() }) { Text("Back to ${s.spName}") }
        } else {
            Text("You can continue on the service's page.")
            Button(onClick = onClose) { Text("Done") }
        }
    }
}
