package xyz.sigilvault.sunstorm.sample.ui

import androidx.activity.compose.BackHandler
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.Button
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Surface
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import xyz.sigilvault.sunstorm.sample.state.BondController
import xyz.sigilvault.sunstorm.sample.state.Destination
import xyz.sigilvault.sunstorm.sample.state.PairController
import xyz.sigilvault.sunstorm.sample.state.PairsController
import xyz.sigilvault.sunstorm.sample.state.SignController

/** The app's screens; [destination] comes from the activity (links, QR, buttons). */
@Composable
fun SunstormApp(
    destination: Destination,
    navigate: (Destination) -> Unit,
    pair: PairController,
    bond: BondController,
    sign: SignController,
    pairs: PairsController,
    onScanned: (String) -> Unit,
    openUrl: (String) -> Unit,
) {
    MaterialTheme {
        Surface(Modifier.fillMaxSize()) {
            if (destination != Destination.Home) BackHandler { navigate(Destination.Home) }
            val home = { navigate(Destination.Home) }
            when (destination) {
                Destination.Home -> HomeScreen(navigate)
                Destination.Bond -> BondScreen(bond, onDone = home)
                Destination.Scan -> QrScannerScreen(onScanned = onScanned, onCancel = home)
                is Destination.Pair -> PairFlowScreen(pair, destination, openUrl = openUrl, onClose = home)
                Destination.SignRequests -> SignRequestsScreen(sign)
                Destination.Pairs -> PairsScreen(pairs)
                is Destination.LinkRefused -> MessageScreen(
                    title = "Not a Sigil pairing link",
                    body = "${destination.reason}\n\nOpen pairing links from the service's page, or scan its QR code.",
                    onClose = home,
                )
            }
        }
    }
}

@Composable
private fun HomeScreen(navigate: (Destination) -> Unit) {
    Column(Modifier.fillMaxSize().padding(24.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        Text("Sunstorm", style = MaterialTheme.typography.headlineMedium)
        Text("Approve pairings and signatures for your Sigil appliance.")
        Button(onClick = { navigate(Destination.Scan) }, Modifier.fillMaxWidth()) { Text("Scan a pairing QR code") }
        OutlinedButton(onClick = { navigate(Destination.SignRequests) }, Modifier.fillMaxWidth()) { Text("Pending sign requests") }
        OutlinedButton(onClick = { navigate(Destination.Pairs) }, Modifier.fillMaxWidth()) { Text("Pairs") }
        OutlinedButton(onClick = { navigate(Destination.Bond) }, Modifier.fillMaxWidth()) { Text("Bond an appliance") }
    }
}

/** A title, a paragraph and a close button. */
@Composable
fun MessageScreen(title: String, body: String, onClose: () -> Unit) {
    Column(Modifier.fillMaxSize().padding(24.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        Text(title, style = MaterialTheme.typography.headlineSmall)
        Text(body)
        Button(onClick = onClose) { Text("Close") }
    }
}
