package xyz.sigilvault.sunstorm.check

import java.io.File
import javax.xml.parsers.DocumentBuilderFactory
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import org.junit.jupiter.api.Test
import org.w3c.dom.Element
import xyz.sigilvault.sunstorm.android.ble.BlePermissions

/**
 * The link association and permission declarations, read from the files the Android and
 * iOS builds use (aapt2 / Xcode are not available here).
 */
class ManifestTest {
    private val android = File(System.getProperty("user.dir")).resolve("..").canonicalFile
    private val ns = "http://schemas.android.com/apk/res/android"

    private fun xml(path: String): Element {
        val f = DocumentBuilderFactory.newInstance().apply { isNamespaceAware = true }
        return f.newDocumentBuilder().parse(android.resolve(path)).documentElement
    }

    private fun Element.children(tag: String): List<Element> {
        val nodes = getElementsByTagName(tag)
        return (0 until nodes.length).map { nodes.item(it) as Element }
    }

    @Test
    fun `the only VIEW intent filter is a verified https App Link for sigilvault xyz pair`() {
        val filters = xml("sample/src/main/AndroidManifest.xml").children("intent-filter")
            .filter { f -> f.children("action").any { it.getAttributeNS(ns, "name") == "android.intent.action.VIEW" } }
        val view = filters.single()
        assertEquals("true", view.getAttributeNS(ns, "autoVerify"))
        val data = view.children("data")
        assertEquals(listOf("https"), data.mapNotNull { it.getAttributeNS(ns, "scheme").ifEmpty { null } }, "no custom scheme, no http")
        assertEquals(listOf("sigilvault.xyz"), data.mapNotNull { it.getAttributeNS(ns, "host").ifEmpty { null } })
        assertEquals(listOf("/pair"), data.mapNotNull { it.getAttributeNS(ns, "path").ifEmpty { null } })
        val categories = view.children("category").map { it.getAttributeNS(ns, "name") }.toSet()
        assertTrue("android.intent.category.BROWSABLE" in categories && "android.intent.category.DEFAULT" in categories)
    }

    @Test
    fun `the library declares every runtime permission the BLE central checks`() {
        val declared = xml("sunstorm/src/main/AndroidManifest.xml").children("uses-permission").map { it.getAttributeNS(ns, "name") }.toSet()
        for (sdk in listOf(30, 31, 35)) {
            for (scan in listOf(true, false)) {
                assertTrue(declared.containsAll(BlePermissions.required(sdk, scan)), "API $sdk scan=$scan")
            }
        }
        assertEquals(listOf("android.permission.BLUETOOTH_SCAN", "android.permission.BLUETOOTH_CONNECT"), BlePermissions.required(31, scan = true))
        assertEquals(listOf("android.permission.ACCESS_FINE_LOCATION"), BlePermissions.required(30, scan = true))
    }

    @Test
    fun `the association files name the app and limit iOS links to pair`() {
        val assetlinks = android.resolve("sample/assetlinks.json").readText()
        assertTrue(assetlinks.contains("\"delegate_permission/common.handle_all_urls\""))
        assertTrue(assetlinks.contains("\"xyz.sigilvault.sunstorm.sample\""))
        val aasa = android.resolve("../ios/SunstormSample/apple-app-site-association").readText()
        assertTrue(Regex("\"/\"\\s*:\\s*\"/pair\"").containsMatchIn(aasa), "AASA limited to /pair")
        assertEquals(1, Regex("\"/\"").findAll(aasa).count(), "exactly one path component")
        val entitlements = android.resolve("../ios/SunstormSample/SunstormSample/SunstormSample.entitlements").readText()
        assertTrue(entitlements.contains("<string>applinks:sigilvault.xyz</string>"))
    }
}
