package xyz.sigilvault.sunstorm.sample.ui

import androidx.compose.foundation.clickable
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.material3.Button
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.RadioButton
import androidx.compose.material3.Text
import androidx.compose.foundation.layout.Row
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import xyz.sigilvault.sunstorm.sample.state.BondController

/** Appliance bonding: scan, choose, type the PIN the appliance shows. */
@Composable
fun BondScreen(c: BondController, onDone: () -> Unit) {
    LaunchedEffect(Unit) { c.scan() }
    val s by c.state.collectAsStateWithLifecycle()
    Column(Modifier.fillMaxSize().padding(24.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        Text("Bond your appliance", style = MaterialTheme.typography.headlineSmall)
        val bonded = s.bonded
        if (bonded != null) {
            Text("Bonded with ${bonded.name}. Its key: ${bonded.identityFingerprint}")
            Button(onClick = onDone) { Text("Done") }
            return@Column
        }
        if (s.scanning) CircularProgressIndicator()
        s.appliances.forEach { row ->
            Row(Modifier.fillMaxWidth().clickable { c.choose(row) }, verticalAlignment = Alignment.CenterVertically) {
                RadioButton(selected = s.chosen == row, onClick = { c.choose(row) })
                Text("${row.displayName} (${row.rssi ?: "?"} dBm)")
            }
        }
        if (!s.scanning) Button(onClick = { c.scan() }) { Text("Scan again") }
        OutlinedTextField(
            value = s.pin,
            onValueChange = c::editPin,
            label = { Text("PIN shown on the appliance") },
            singleLine = true,
            keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.NumberPassword),
            isError = s.error != null,
            supportingText = { s.error?.let { Text(it) } },
        )
        Button(onClick = c::bond, enabled = s.canBond) { Text(if (s.busy) "Bonding…" else "Bond") }
    }
}
