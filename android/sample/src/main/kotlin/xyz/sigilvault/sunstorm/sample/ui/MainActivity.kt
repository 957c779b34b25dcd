package xyz.sigilvault.sunstorm.sample.ui

import android.Manifest
import android.content.Intent
import android.net.Uri
import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.result.contract.ActivityResultContracts
import androidx.compose.runtime.mutableStateOf
import androidx.lifecycle.lifecycleScope
import xyz.sigilvault.sunstorm.android.ble.BlePermissions
import xyz.sigilvault.sunstorm.sample.platform.SampleApplication
import xyz.sigilvault.sunstorm.sample.state.BondController
import xyz.sigilvault.sunstorm.sample.state.Destination
import xyz.sigilvault.sunstorm.sample.state.PairController
import xyz.sigilvault.sunstorm.sample.state.PairsController
import xyz.sigilvault.sunstorm.sample.state.SignController
import xyz.sigilvault.sunstorm.sample.state.destinationFor

/**
 * The single activity. App Links arrive here (`singleTask`: `onNewIntent` when running),
 * are routed through the core's parser and open the pair screen; the QR scanner feeds the
 * same router. Runtime permissions are asked when a screen needs them.
 */
class MainActivity : ComponentActivity() {
    private val app get() = application as SampleApplication
    private val destination = mutableStateOf<Destination>(Destination.Home)

    private val blePermissions = registerForActivityResult(ActivityResultContracts.RequestMultiplePermissions()) { granted ->
        if (granted.values.all { it }) destination.value = Destination.Bond
    }
    private val cameraPermission = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) destination.value = Destination.Scan
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val pair = PairController(app.flows, lifecycleScope)
        val bond = BondController(app.flows, lifecycleScope)
        val sign = SignController(app.flows, lifecycleScope)
        val pairs = PairsController(app.flows, lifecycleScope)
        route(intent)
        setContent {
            SunstormApp(
                destination = destination.value,
                navigate = ::navigate,
                pair = pair,
                bond = bond,
                sign = sign,
                pairs = pairs,
                onScanned = { text -> destinationFor(app.router.routeScan(text), text.trim())?.let { destination.value = it } },
                openUrl = { url -> startActivity(Intent(Intent.ACTION_VIEW, Uri.parse(url))) },
            )
        }
    }

    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        setIntent(intent)
        route(intent)
    }

    private fun route(intent: Intent) {
        val data = intent.dataString
        destinationFor(app.router.routeIntent(intent.action, data), data)?.let { destination.value = it }
    }

    /** Goes to [to], asking first for the runtime permissions it needs. */
    private fun navigate(to: Destination) {
        when (to) {
            Destination.Bond -> {
                val needed = BlePermissions.required(android.os.Build.VERSION.SDK_INT, scan = true)
                if (needed.all { checkSelfPermission(it) == android.content.pm.PackageManager.PERMISSION_GRANTED }) {
                    destination.value = to
                } else {
                    blePermissions.launch(needed.toTypedArray())
                }
            }
            Destination.Scan -> cameraPermission.launch(Manifest.permission.CAMERA)
            else -> destination.value = to
        }
    }
}
